"""The append-only record of what happened to governance actions, and the notices it sends.

Every change of an action (opened, a breach recorded, acknowledged, assigned, waived, re-opened,
escalated, resolved, commented) is one row of ``impact.governance_action_events`` naming who did it:
a person (their given name and the OS user that ran the command) or ``system`` for what the product
does by rule. An action's current state is a view over its events; nothing is updated in place.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from impact_assets.storage import SCHEMA

__all__ = [
    "SYSTEM",
    "ActionState",
    "action_state",
    "live_action",
    "os_user",
    "record_event",
    "record_notice",
]

#: The actor of the product's own transitions (auto-resolution, escalation, waiver expiry).
SYSTEM = "system"


def os_user() -> str | None:
    """The operating-system user running this process (OSS Dagster has no user identity)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class ActionState:
    """One governance action as its events left it (``governance_action_state``)."""

    action_id: str
    assessment_id: str
    entry_id: str
    owner: str
    action_type: str
    last_state: str
    due_at: dt.datetime | None
    escalate_to: str | None
    escalated_to: str | None
    breach_count: int
    last_breach_value: float | None
    waived_by: str | None
    waived_value: float | None
    waiver_expires_at: dt.datetime | None
    acknowledged_by: str | None
    flagged_overdue: bool

    @property
    def live(self) -> bool:
        return self.last_state != "resolved"

    def state_at(self, at: dt.datetime) -> str:
        """``open``, ``acknowledged``, ``waived`` or ``resolved`` at ``at`` (an expired waiver is open)."""
        if self.last_state == "resolved":
            return "resolved"
        if self.last_state == "waived":
            return "open" if self.waiver_expires_at and self.waiver_expires_at <= at else "waived"
        return "acknowledged" if self.last_state == "acknowledged" else "open"


_STATE_COLUMNS = ", ".join(f.name for f in ActionState.__dataclass_fields__.values())  # type: ignore[attr-defined]


def action_state(conn: duckdb.DuckDBPyConnection, action_id: str) -> ActionState | None:
    rows = conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM {SCHEMA}.governance_action_state WHERE action_id = ?",
        [action_id],
    ).fetchall()
    return ActionState(*rows[0]) if rows else None


def live_action(
    conn: duckdb.DuckDBPyConnection, assessment_id: str, entry_id: str
) -> ActionState | None:
    """The entry's action that is not resolved (there is at most one: its breach episode)."""
    rows = conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM {SCHEMA}.governance_action_state "
        "WHERE assessment_id = ? AND entry_id = ? AND last_state <> 'resolved' ORDER BY opened_at DESC LIMIT 1",
        [assessment_id, entry_id],
    ).fetchall()
    return ActionState(*rows[0]) if rows else None


def record_event(
    conn: duckdb.DuckDBPyConnection,
    action_id: str,
    event: str,
    *,
    at: dt.datetime,
    detail: str,
    actor: str = SYSTEM,
    snapshot_id: str | None = None,
    rationale: str | None = None,
    assignee: str | None = None,
    approver: str | None = None,
    expires_at: dt.datetime | None = None,
    value: float | None = None,
) -> None:
    """Append one event of an action (in the caller's transaction)."""
    conn.execute(
        f"""INSERT INTO {SCHEMA}.governance_action_events
            (action_id, event, snapshot_id, event_at, detail, actor, os_user, rationale, assignee, approver, expires_at, value)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            action_id,
            event,
            snapshot_id,
            at,
            detail,
            actor,
            None if actor == SYSTEM else os_user(),
            rationale,
            assignee,
            approver,
            expires_at,
            value,
        ],
    )


def record_notice(
    conn: duckdb.DuckDBPyConnection,
    *,
    assessment_id: str,
    kind: str,
    subject: str,
    at: dt.datetime,
    details: dict[str, Any],
    partition_key: str | None = None,
    entry_id: str | None = None,
    action_id: str | None = None,
    model_version: str | None = None,
) -> str:
    """Put a notice in the outbox (in the caller's transaction); channels deliver it later."""
    notice_id = str(uuid.uuid4())
    body = {
        "notice_id": notice_id,
        "kind": kind,
        "assessment_id": assessment_id,
        "subject": subject,
        "created_at": at.isoformat(),
        "partition_key": partition_key,
        "entry_id": entry_id,
        "action_id": action_id,
        "model_version": model_version,
        **details,
    }
    conn.execute(
        f"INSERT INTO {SCHEMA}.notices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            notice_id,
            assessment_id,
            kind,
            subject,
            json.dumps(body, default=str, ensure_ascii=False),
            at,
            partition_key,
            entry_id,
            action_id,
            model_version,
        ],
    )
    return notice_id
