"""What a snapshot sets in motion: changes since the previous snapshot, governance actions, impact level.

Everything here runs inside the snapshot's transaction (see :func:`write_snapshot`), so a snapshot,
its changes and the actions it opens or resolves are written together or not at all.

Snapshots of an entry are ordered by (partition, snapshot version): the "previous" snapshot of an
entry is the one just before in that order, which for nightly runs is yesterday's and for a re-run is
the earlier version of the same day.

Actions: a ``breach`` opens an action of the entry's type for its owner, due after the configured days;
while it is live (open, acknowledged or waived), later breaches are recorded on it, not opened again;
it resolves itself (by ``system``, with the evidence) once the entry has passed in the configured
number of consecutive snapshots. People acknowledge, assign, waive, resolve and comment
(:mod:`impact_assets.oversight`); the rules here keep what they decided honest:

* a waiver re-opens the action when it expires, or when a breach is worse than the one waived;
* an open or acknowledged action past its due date is flagged overdue (an ``overdue`` event, once),
  and escalates to the entry's ``escalate_to``, once per action; so does an action whose entry has
  breached ``escalate_after_breaches`` times;
* each new action, new breach, escalation and re-opened waiver puts a notice in the outbox.

Every change is an event (``impact.governance_action_events``); nothing is updated or deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from impact_assets.oversight import ActionState, live_action, record_event, record_notice
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
    # what the approval accepts: breaches and warnings of entries whose action does not hold a release
    accepted = [
        f"{e.id} ({statuses[e.id]}, {e.action})"
        for status in ("breach", "warn")
        for e in entries
        if statuses.get(e.id) == status
    ]
    reasons = [
        f"no block_release or rollback entry is in {sorted({*spec.hold_on, *spec.rollback_on})}"
    ]
    if awaited:
        reasons.append(
            f"approved on decision-time evidence: {', '.join(awaited)} await outcomes (an estimate never approves)"
        )
    if accepted:
        reasons.append(f"approved with these entries not passing: {', '.join(accepted)}")
    return "approve", reasons


def _earlier(alias: str = "s") -> str:
    return f"({alias}.partition_key < ? OR ({alias}.partition_key = ? AND {alias}.snapshot_version < ?))"


@dataclass(frozen=True)
class _Snapshot:
    """The snapshot the governance rules act on."""

    assessment_id: str
    snapshot_id: str
    partition_key: str
    snapshot_version: int
    taken_at: dt.datetime
    model_version: str | None


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
    model_version: str | None = None,
) -> None:
    """Record changes and open, update, escalate, re-open or resolve governance actions for a new snapshot.

    Runs in the caller's transaction, after the snapshot and its entries are inserted.
    """
    by_id = {e.id: e for e in entries}
    snap = _Snapshot(
        assessment_id, snapshot_id, partition_key, snapshot_version, taken_at, model_version
    )
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
        _act(conn, snap, by_id[result.entry_id], result, governance, prev_status)


def _worse(entry: RegisterEntry, value: float | None, than: float | None) -> bool:
    if value is None or than is None:
        return False
    return value < than if entry.thresholds.direction == "higher_is_better" else value > than


def _notice(
    conn, snap: _Snapshot, entry: RegisterEntry, kind: str, subject: str, **details
) -> None:
    record_notice(
        conn,
        assessment_id=snap.assessment_id,
        kind=kind,
        subject=subject,
        at=snap.taken_at,
        details={"owner": entry.owner, "action": entry.action, **details},
        partition_key=snap.partition_key,
        entry_id=entry.id,
        action_id=details.get("action_id"),
        model_version=snap.model_version,
    )


def _escalate(conn, snap: _Snapshot, entry: RegisterEntry, live: ActionState, why: str) -> None:
    if entry.escalate_to is None or live.escalated_to is not None:
        return
    record_event(
        conn,
        live.action_id,
        "escalated",
        at=snap.taken_at,
        snapshot_id=snap.snapshot_id,
        assignee=entry.escalate_to,
        detail=f"escalated to {entry.escalate_to}: {why}",
    )
    _notice(
        conn,
        snap,
        entry,
        "escalation",
        f"[{snap.assessment_id}] {entry.id}: action escalated to {entry.escalate_to} ({why})",
        action_id=live.action_id,
        escalated_to=entry.escalate_to,
        reason=why,
    )


def _act(
    conn,
    snap: _Snapshot,
    entry: RegisterEntry,
    result: EntryResult,
    governance: GovernanceSpec,
    prev_status: str | None,
) -> None:
    live = live_action(conn, snap.assessment_id, entry.id)
    evidence = f"{result.status}: {result.reason} (partition {snap.partition_key}, snapshot {snap.snapshot_id})"
    facts = {
        "status": result.status,
        "value": result.value,
        "reason": result.reason,
        "thresholds": entry.thresholds.model_dump(),
    }
    state = live.state_at(snap.taken_at) if live else None
    if live is not None and live.last_state == "waived" and state == "open":
        _reopen(
            conn,
            snap,
            entry,
            live,
            f"the waiver by {live.waived_by} expired on {live.waiver_expires_at - dt.timedelta(days=1):%Y-%m-%d}",
        )
    if result.status == "breach":
        if live is None:
            action_id = str(uuid.uuid4())
            due = snap.taken_at + dt.timedelta(days=governance.due_days.get(entry.action, 14))
            conn.execute(
                f"INSERT INTO {SCHEMA}.governance_actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    action_id,
                    snap.assessment_id,
                    entry.id,
                    entry.owner,
                    entry.action,
                    snap.taken_at,
                    due,
                    snap.snapshot_id,
                    list(entry.frameworks),
                    entry.escalate_to,
                ],
            )
            record_event(
                conn,
                action_id,
                "opened",
                at=snap.taken_at,
                snapshot_id=snap.snapshot_id,
                detail=evidence,
                value=result.value,
            )
            _notice(
                conn,
                snap,
                entry,
                "action_opened",
                f"[{snap.assessment_id}] {entry.id} breached on {snap.partition_key}: {entry.action} action opened for {entry.owner}, due {due:%Y-%m-%d}",
                action_id=action_id,
                due_at=due,
                **facts,
            )
            return
        record_event(
            conn,
            live.action_id,
            "breach_recorded",
            at=snap.taken_at,
            snapshot_id=snap.snapshot_id,
            detail=evidence,
            value=result.value,
        )
        if prev_status != "breach":
            _notice(
                conn,
                snap,
                entry,
                "breach",
                f"[{snap.assessment_id}] {entry.id} breached again on {snap.partition_key} (action {state}, owner {live.owner})",
                action_id=live.action_id,
                **facts,
            )
        if state == "waived":
            if _worse(entry, result.value, live.waived_value):
                _reopen(
                    conn,
                    snap,
                    entry,
                    live,
                    f"the breach ({result.value:.4g}) is worse than the one waived ({live.waived_value:.4g})",
                )
            return
        limit = governance.escalate_after_breaches
        if limit is not None and live.breach_count + 1 >= limit:
            _escalate(conn, snap, entry, live, f"{live.breach_count + 1} breaches in one episode")
        return
    if live is None:
        return
    if result.status == "pass" and _passed_enough(conn, snap, entry, governance):
        return
    if (
        state in ("open", "acknowledged")
        and live.due_at is not None
        and snap.taken_at > live.due_at
    ):
        if not live.flagged_overdue:
            record_event(
                conn,
                live.action_id,
                "overdue",
                at=snap.taken_at,
                snapshot_id=snap.snapshot_id,
                detail=f"{state} past its due date {live.due_at.isoformat()}",
            )
        _escalate(conn, snap, entry, live, f"overdue since {live.due_at:%Y-%m-%d}")


def _reopen(conn, snap: _Snapshot, entry: RegisterEntry, live: ActionState, why: str) -> None:
    record_event(
        conn,
        live.action_id,
        "reopened",
        at=snap.taken_at,
        snapshot_id=snap.snapshot_id,
        detail=f"re-opened: {why}",
    )
    _notice(
        conn,
        snap,
        entry,
        "waiver_reopened",
        f"[{snap.assessment_id}] {entry.id}: waived action re-opened ({why})",
        action_id=live.action_id,
        reason=why,
    )


def _passed_enough(conn, snap: _Snapshot, entry: RegisterEntry, governance: GovernanceSpec) -> bool:
    """Resolve the entry's live action (by ``system``) when its last snapshots all passed.

    Only a snapshot of the partition of the action's last breach or a later one resolves it: a
    re-assessment of an earlier day (when its outcomes arrive) says nothing of a later breach.
    """
    live = live_action(conn, snap.assessment_id, entry.id)
    assert live is not None
    last_breach = conn.execute(
        f"""SELECT max(s.partition_key) FROM {SCHEMA}.governance_action_events e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
            WHERE e.action_id = ? AND e.event IN ('opened', 'breach_recorded')""",
        [live.action_id],
    ).fetchall()[0][0]
    if last_breach is not None and snap.partition_key < last_breach:
        return False
    recent = conn.execute(
        f"""SELECT s.snapshot_id, e.status, e.value, s.partition_key FROM {SCHEMA}.register_entries e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
            WHERE s.assessment_id = ? AND e.entry_id = ? AND (s.partition_key < ? OR (s.partition_key = ? AND s.snapshot_version <= ?))
            ORDER BY s.partition_key DESC, s.snapshot_version DESC LIMIT ?""",
        [
            snap.assessment_id,
            entry.id,
            snap.partition_key,
            snap.partition_key,
            snap.snapshot_version,
            governance.resolve_after_passes,
        ],
    ).fetchall()
    if len(recent) < governance.resolve_after_passes or any(s != "pass" for _, s, _, _ in recent):
        return False
    proof = json.dumps([{"snapshot_id": s, "partition": p, "value": v} for s, _, v, p in recent])
    record_event(
        conn,
        live.action_id,
        "resolved",
        at=snap.taken_at,
        snapshot_id=snap.snapshot_id,
        detail=f"passed in {governance.resolve_after_passes} consecutive snapshots",
        rationale=proof,
    )
    return True
