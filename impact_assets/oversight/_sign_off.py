"""Release sign-off: the register recommends, named approvers decide.

With a sign-off policy (``release.sign_off``), an ``approve`` of the register is a recommendation
that waits for ``required`` different approvers; the proposer of the version may not be one of them
unless the policy says so. Sign-offs count from the version's last hold: a held version needs them
again once the register approves it anew. A rolled-back version cannot be signed off. A rollback
itself stays automatic (safety first) and is recorded as such.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from impact_assets.errors import OversightError
from impact_assets.oversight._events import os_user
from impact_assets.spec import SignOffPolicy
from impact_assets.storage import SCHEMA

if TYPE_CHECKING:
    from impact_assets.modeling import LocalModelRegistry, MlflowModelRegistry

__all__ = [
    "ReleaseState",
    "check_sign_off",
    "live_actions",
    "record_sign_off",
    "release_state",
    "serving_version",
]


@dataclass(frozen=True)
class ReleaseState:
    """A model version's release state (``impact.release_state``)."""

    model_version: str
    recommendation: str
    decision_id: str
    decided_at: dt.datetime
    partition_key: str
    reasons: list[str]
    proposed_by: str | None
    open_actions: list[str] | None
    sign_offs_required: int
    signatures: int
    signers: list[str]
    state: str
    state_since: dt.datetime | None


_COLUMNS = ", ".join(ReleaseState.__dataclass_fields__)  # type: ignore[attr-defined]


def release_state(
    conn: duckdb.DuckDBPyConnection, assessment_id: str, model_version: str | None = None
) -> list[ReleaseState]:
    """Every model version's release state (or one version's), newest decision first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.release_state WHERE assessment_id = $a AND ($v IS NULL OR model_version = $v) "
        "ORDER BY decided_at DESC",
        {"a": assessment_id, "v": model_version},
    ).fetchall()
    return [ReleaseState(*row) for row in rows]


def serving_version(
    registry: LocalModelRegistry | MlflowModelRegistry | None, releases: list[ReleaseState]
) -> str | None:
    """The model version in service: the registry's approved one, else the newest approved."""
    if registry is not None:
        return registry.approved()
    approved = [r for r in releases if r.state == "approved" and r.state_since is not None]
    return max(approved, key=lambda r: r.state_since).model_version if approved else None


def live_actions(conn: duckdb.DuckDBPyConnection, assessment_id: str) -> list[str]:
    """The assessment's actions not resolved, as ``entry (state)``, for release reasons."""
    rows = conn.execute(
        f"SELECT entry_id, status FROM {SCHEMA}.governance_actions_current WHERE assessment_id = ? AND status <> 'resolved' "
        "ORDER BY opened_at",
        [assessment_id],
    ).fetchall()
    return [f"{entry} ({status})" for entry, status in rows]


def check_sign_off(
    policy: SignOffPolicy | None,
    state: ReleaseState | None,
    *,
    assessment_id: str,
    model_version: str,
    signer: str,
) -> str | None:
    """The role ``signer`` signs in (``None``: by name), or :class:`OversightError` saying why not."""
    where = {"assessment": assessment_id, "model_version": model_version, "signer": signer}
    if policy is None:
        raise OversightError(
            f"the release policy of {assessment_id} is automatic (no release.sign_off): there is nothing to sign",
            context=where,
        )
    if state is None:
        raise OversightError(
            f"model version {model_version} of {assessment_id} has no release decision to sign off",
            context=where,
        )
    if state.state == "rolled_back":
        raise OversightError(
            f"model version {model_version} was rolled back ({state.state_since:%Y-%m-%d %H:%M} UTC); it cannot be signed off",
            context=where,
        )
    if state.state == "held":
        raise OversightError(
            f"model version {model_version} is held by the register ({'; '.join(state.reasons)}); it cannot be signed off",
            context=where,
        )
    if state.state == "approved":
        raise OversightError(
            f"model version {model_version} is already approved (signed by {', '.join(state.signers) or 'the automatic policy'})",
            context=where,
        )
    people = policy.people()
    if signer not in people:
        raise OversightError(
            f"{signer} is not an approver of {assessment_id}'s releases (approvers: {', '.join(sorted(people))})",
            context=where,
        )
    if signer == state.proposed_by and not policy.proposer_may_sign:
        raise OversightError(
            f"{signer} proposed model version {model_version} and may not sign it off (four eyes)",
            context=where,
        )
    if signer in state.signers:
        raise OversightError(
            f"{signer} has already signed model version {model_version} off", context=where
        )
    return people[signer]


def record_sign_off(
    conn: duckdb.DuckDBPyConnection,
    assessment_id: str,
    state: ReleaseState,
    *,
    signer: str,
    role: str | None,
    rationale: str,
    via: str,
    at: dt.datetime,
) -> None:
    conn.execute(
        f"INSERT INTO {SCHEMA}.release_sign_offs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            str(uuid.uuid4()),
            state.decision_id,
            assessment_id,
            state.model_version,
            signer,
            role,
            os_user(),
            at,
            rationale,
            via,
        ],
    )
