"""What a snapshot sets in motion: changes since the previous snapshot, governance actions, impact level.

Everything here runs inside the snapshot's transaction (see :func:`write_snapshot`), so a snapshot,
its changes and the actions it opens or resolves are written together or not at all.

Snapshots of an entry are ordered by (partition, snapshot version): the "previous" snapshot of an
entry is the one just before in that order, which for nightly runs is yesterday's and for a re-run is
the earlier version of the same day.

Actions: a ``breach`` opens an action of the entry's type for its owner, due after the configured days;
while it is open, later breaches are recorded on it, not opened again; it resolves itself, with the
evidence, once the entry has passed in the configured number of consecutive snapshots. An open action
past its due date is flagged overdue (an ``overdue`` event, once, and the ``overdue`` column of
``impact.governance_actions_current``). Nothing is ever deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from impact_assets.register._evaluate import EntryResult
from impact_assets.spec import GovernanceSpec, ImpactLevelSpec, RegisterEntry, ReleaseSpec
from impact_assets.storage import SCHEMA

__all__ = ["ImpactLevel", "apply_governance", "impact_level", "release_decision"]

LEVELS = ("I", "II", "III", "IV")


@dataclass(frozen=True)
class ImpactLevel:
    """Impact level after the Canada Algorithmic Impact Assessment scheme."""

    raw_score: int
    max_raw_score: int
    mitigation_score: int
    max_mitigation_score: int
    reduced: bool
    score: float
    level: str


def impact_level(spec: ImpactLevelSpec, statuses: Mapping[str, str]) -> ImpactLevel:
    """Raw impact score, mitigation score (credited only while its control passes) and the level.

    The raw score is reduced by 15 % when the mitigation score reaches 80 % of its maximum; levels
    I-IV are cut at 25, 50 and 75 % of the maximum raw score.

    Example:
        >>> from impact_assets.spec import ImpactLevelSpec
        >>> spec = ImpactLevelSpec.model_validate({"impact": [{"question": "q", "points": 30, "max": 40}],
        ...     "mitigation": [{"question": "m", "points": 8, "max": 10, "control": "parity"}]})
        >>> impact_level(spec, {"parity": "pass"}).level, impact_level(spec, {"parity": "breach"}).level
        ('III', 'III')
    """
    raw = sum(q.points for q in spec.impact)
    max_raw = sum(q.max for q in spec.impact)
    mitigation = sum(
        q.points for q in spec.mitigation if q.control is None or statuses.get(q.control) == "pass"
    )
    max_mitigation = sum(q.max for q in spec.mitigation)
    reduced = max_mitigation > 0 and mitigation >= 0.8 * max_mitigation
    score = raw * 0.85 if reduced else float(raw)
    share = score / max_raw
    level = (
        LEVELS[0]
        if share <= 0.25
        else LEVELS[1]
        if share <= 0.5
        else LEVELS[2]
        if share <= 0.75
        else LEVELS[3]
    )
    return ImpactLevel(raw, max_raw, mitigation, max_mitigation, reduced, score, level)


def release_decision(
    entries: Sequence[RegisterEntry], statuses: Mapping[str, str], spec: ReleaseSpec
) -> tuple[str, list[str]]:
    """``approve``, ``hold`` or ``rollback`` for a model version, with the entries that decided it."""
    rollback = [
        f"{e.id} is {statuses[e.id]}"
        for e in entries
        if e.action == "rollback" and statuses.get(e.id) in spec.rollback_on
    ]
    if rollback:
        return "rollback", rollback
    hold = [
        f"{e.id} is {statuses[e.id]}"
        for e in entries
        if e.action in ("block_release", "rollback") and statuses.get(e.id) in spec.hold_on
    ]
    if hold:
        return "hold", hold
    awaited = [
        e.id
        for e in entries
        if e.action in ("block_release", "rollback") and statuses.get(e.id) == "awaiting_outcomes"
    ]
    return "approve", [
        f"no block_release or rollback entry is in {sorted({*spec.hold_on, *spec.rollback_on})}",
        *(
            [
                f"approved on decision-time evidence: {', '.join(awaited)} await outcomes (an estimate never approves)"
            ]
            if awaited
            else []
        ),
    ]


def _earlier(alias: str = "s") -> str:
    return f"({alias}.partition_key < ? OR ({alias}.partition_key = ? AND {alias}.snapshot_version < ?))"


def apply_governance(
    conn: duckdb.DuckDBPyConnection,
    *,
    assessment_id: str,
    snapshot_id: str,
    partition_key: str,
    snapshot_version: int,
    taken_at: dt.datetime,
    entries: Sequence[RegisterEntry],
    results: Sequence[EntryResult],
    governance: GovernanceSpec,
) -> None:
    """Record changes and open, update, resolve or flag governance actions for a new snapshot.

    Runs in the caller's transaction, after the snapshot and its entries are inserted.
    """
    by_id = {e.id: e for e in entries}
    for result in results:
        previous = conn.execute(
            f"""SELECT e.snapshot_id, e.status, e.value FROM {SCHEMA}.register_entries e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
                WHERE s.assessment_id = ? AND e.entry_id = ? AND {_earlier()}
                ORDER BY s.partition_key DESC, s.snapshot_version DESC LIMIT 1""",
            [assessment_id, result.entry_id, partition_key, partition_key, snapshot_version],
        ).fetchall()
        prev_id, prev_status, prev_value = previous[0] if previous else (None, None, None)
        delta = None if prev_value is None or result.value is None else result.value - prev_value
        conn.execute(
            f"INSERT INTO {SCHEMA}.register_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                snapshot_id,
                assessment_id,
                result.entry_id,
                partition_key,
                prev_id,
                prev_status,
                result.status,
                prev_value,
                result.value,
                delta,
                taken_at,
            ],
        )
        _act(
            conn,
            assessment_id,
            snapshot_id,
            partition_key,
            snapshot_version,
            taken_at,
            by_id[result.entry_id],
            result,
            governance,
        )


def _event(
    conn: duckdb.DuckDBPyConnection,
    action_id: str,
    event: str,
    snapshot_id: str,
    at: dt.datetime,
    detail: str,
) -> None:
    conn.execute(
        f"INSERT INTO {SCHEMA}.governance_action_events VALUES (?, ?, ?, ?, ?)",
        [action_id, event, snapshot_id, at, detail],
    )


def _act(
    conn,
    assessment_id,
    snapshot_id,
    partition_key,
    snapshot_version,
    taken_at,
    entry: RegisterEntry,
    result: EntryResult,
    governance: GovernanceSpec,
) -> None:
    open_action = conn.execute(
        f"SELECT action_id, due_at FROM {SCHEMA}.governance_actions WHERE assessment_id = ? AND entry_id = ? AND status = 'open'",
        [assessment_id, entry.id],
    ).fetchall()
    evidence = (
        f"{result.status}: {result.reason} (partition {partition_key}, snapshot {snapshot_id})"
    )
    if result.status == "breach":
        if open_action:
            action_id = open_action[0][0]
            conn.execute(
                f"UPDATE {SCHEMA}.governance_actions SET breach_count = breach_count + 1, last_breach_at = ? WHERE action_id = ?",
                [taken_at, action_id],
            )
            _event(conn, action_id, "breach_recorded", snapshot_id, taken_at, evidence)
        else:
            action_id = str(uuid.uuid4())
            due = taken_at + dt.timedelta(days=governance.due_days.get(entry.action, 14))
            conn.execute(
                f"""INSERT INTO {SCHEMA}.governance_actions
                    (action_id, assessment_id, entry_id, owner, action_type, opened_at, due_at, status, resolved_at,
                     opened_snapshot_id, resolved_snapshot_id, breach_count, last_breach_at, resolution_evidence, frameworks)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 'open', NULL, ?, NULL, 1, ?, NULL, ?)""",
                [
                    action_id,
                    assessment_id,
                    entry.id,
                    entry.owner,
                    entry.action,
                    taken_at,
                    due,
                    snapshot_id,
                    taken_at,
                    list(entry.frameworks),
                ],
            )
            _event(conn, action_id, "opened", snapshot_id, taken_at, evidence)
        return
    if not open_action:
        return
    action_id, due_at = open_action[0]
    if result.status == "pass":
        recent = conn.execute(
            f"""SELECT s.snapshot_id, e.status, e.value, s.partition_key FROM {SCHEMA}.register_entries e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
                WHERE s.assessment_id = ? AND e.entry_id = ? AND (s.partition_key < ? OR (s.partition_key = ? AND s.snapshot_version <= ?))
                ORDER BY s.partition_key DESC, s.snapshot_version DESC LIMIT ?""",
            [
                assessment_id,
                entry.id,
                partition_key,
                partition_key,
                snapshot_version,
                governance.resolve_after_passes,
            ],
        ).fetchall()
        if len(recent) == governance.resolve_after_passes and all(
            status == "pass" for _, status, _, _ in recent
        ):
            proof = json.dumps(
                [{"snapshot_id": s, "partition": p, "value": v} for s, _, v, p in recent]
            )
            conn.execute(
                f"UPDATE {SCHEMA}.governance_actions SET status = 'resolved', resolved_at = ?, resolved_snapshot_id = ?, resolution_evidence = ? WHERE action_id = ?",
                [taken_at, snapshot_id, proof, action_id],
            )
            _event(
                conn,
                action_id,
                "resolved",
                snapshot_id,
                taken_at,
                f"passed in {governance.resolve_after_passes} consecutive snapshots: {proof}",
            )
            return
    if due_at is not None and taken_at > due_at:
        flagged = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.governance_action_events WHERE action_id = ? AND event = 'overdue'",
            [action_id],
        ).fetchall()[0][0]
        if not flagged:
            _event(
                conn,
                action_id,
                "overdue",
                snapshot_id,
                taken_at,
                f"open past its due date {due_at.isoformat()}",
            )
