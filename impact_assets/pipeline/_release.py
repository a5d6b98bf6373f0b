"""The release recommendation for the model version a partition's newest snapshot assessed, and its sign-off."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import duckdb

from impact_assets.assessment import Assessment
from impact_assets.errors import ModelRegistryError, OversightError
from impact_assets.oversight import (
    ReleaseState,
    check_sign_off,
    live_action,
    live_actions,
    record_event,
    record_notice,
    record_sign_off,
    release_state,
)
from impact_assets.register import release_decision
from impact_assets.storage import SCHEMA


@dataclass(frozen=True)
class ReleaseDecision:
    decision: str
    model_version: str
    rollback_to: str | None
    reasons: list[str]
    snapshot_id: str
    state: str = "approved"
    """The version's release state after the decision: ``approved``, ``awaiting_sign_off``, ``held`` or ``rolled_back``."""


NO_SNAPSHOT = (
    "partition {partition} has no register snapshot to decide on; materialize the register first"
)

NO_ROLLBACK_TARGET = "no earlier approved version to roll back to"
AUTOMATIC_ROLLBACK = "rolled back automatically: the release policy does not wait for sign-off to roll back (safety first)"


def _proposer(assessment: Assessment, model_version: str) -> str | None:
    registry = assessment.registry
    if registry is None or model_version not in registry.versions():
        return None
    return registry.get(model_version).metadata.get("proposed_by")


def decide_release(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    *,
    decided_at: dt.datetime | None = None,
) -> ReleaseDecision:
    """Recommend approve, hold or rollback for the version of the partition's newest snapshot, and record it.

    ``rollback`` names the last approved version (and marks this one rolled back in the registry, so
    scoring goes back to an approved version); without one, the decision is ``hold``. With a sign-off
    policy, an ``approve`` waits for its sign-offs (a notice asks for them once); the version's
    live governance actions are named in the reasons, never hidden.
    """
    latest = conn.execute(
        f"SELECT snapshot_id, model_version FROM {SCHEMA}.register_snapshots WHERE assessment_id = ? AND partition_key = ? "
        "ORDER BY snapshot_version DESC LIMIT 1",
        [assessment.id, partition_key],
    ).fetchall()
    if not latest:
        raise ModelRegistryError(
            NO_SNAPSHOT.format(partition=partition_key), context={"assessment": assessment.id}
        )
    snapshot_id, model_version = latest[0]
    statuses = dict(
        conn.execute(
            f"SELECT entry_id, status FROM {SCHEMA}.register_entries WHERE snapshot_id = ?",
            [snapshot_id],
        ).fetchall()
    )
    policy = assessment.spec.release.sign_off
    decision, reasons = release_decision(
        assessment.spec.register_entries, statuses, assessment.spec.release
    )
    rollback_to = None
    if decision == "rollback":
        target = [
            s.model_version
            for s in release_state(conn, assessment.id)
            if s.state == "approved" and s.model_version != model_version
        ]
        if target:
            rollback_to = target[0]
            reasons = [*reasons, AUTOMATIC_ROLLBACK]
        else:
            decision, reasons = "hold", [*reasons, NO_ROLLBACK_TARGET]
    live = live_actions(conn, assessment.id)
    if decision == "approve" and live:
        reasons = [
            *reasons,
            f"approved with {len(live)} open governance actions: {', '.join(live)}",
        ]
    (before,) = release_state(conn, assessment.id, model_version) or [None]
    decided_at = decided_at or dt.datetime.now(dt.UTC)
    required = policy.required if policy is not None and decision == "approve" else 0
    decision_id = str(uuid.uuid4())
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"""INSERT INTO {SCHEMA}.release_decisions (decision_id, assessment_id, model_version, decision, decided_at, snapshot_id,
                partition_key, rollback_to, reasons, sign_offs_required, proposed_by, open_actions)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                decision_id,
                assessment.id,
                model_version,
                decision,
                decided_at,
                snapshot_id,
                partition_key,
                rollback_to,
                reasons,
                required,
                _proposer(assessment, model_version),
                live,
            ],
        )
        (after,) = release_state(conn, assessment.id, model_version)
        if after.state == "awaiting_sign_off" and (
            before is None or before.state != "awaiting_sign_off"
        ):
            assert policy is not None
            record_notice(
                conn,
                assessment_id=assessment.id,
                kind="sign_off_requested",
                subject=f"[{assessment.id}] model version {model_version} is recommended for release and awaits {required} sign-offs",
                at=decided_at,
                details={
                    "approvers": sorted(policy.people()),
                    "required": required,
                    "reasons": reasons,
                    "proposed_by": after.proposed_by,
                },
                partition_key=partition_key,
                model_version=model_version,
            )
        if decision == "rollback" and (before is None or before.state != "rolled_back"):
            _resolve_by_rollback(conn, assessment, statuses, model_version, rollback_to, decided_at)
            record_notice(
                conn,
                assessment_id=assessment.id,
                kind="rollback",
                subject=f"[{assessment.id}] model version {model_version} rolled back to {rollback_to}",
                at=decided_at,
                details={"rollback_to": rollback_to, "reasons": reasons},
                partition_key=partition_key,
                model_version=model_version,
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    _mark(
        assessment,
        after,
        {
            "decided_at": decided_at,
            "partition": partition_key,
            "reasons": reasons,
            "rollback_to": rollback_to,
        },
    )
    return ReleaseDecision(decision, model_version, rollback_to, reasons, snapshot_id, after.state)


def _resolve_by_rollback(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    statuses: dict[str, str],
    model_version: str,
    rollback_to: str | None,
    at: dt.datetime,
) -> None:
    """The rollback is the action the breached ``rollback`` entries asked for: their actions are
    resolved by it, on the record (the breach stays in the history; a new one opens a new action)."""
    for entry in assessment.spec.register_entries:
        if (
            entry.action != "rollback"
            or statuses.get(entry.id) not in assessment.spec.release.rollback_on
        ):
            continue
        live = live_action(conn, assessment.id, entry.id)
        if live is not None:
            record_event(
                conn,
                live.action_id,
                "resolved",
                at=at,
                detail=f"model version {model_version} rolled back to {rollback_to} (automatic)",
            )


def _mark(assessment: Assessment, state: ReleaseState, detail: dict) -> None:
    registry = assessment.registry
    if registry is not None and state.model_version in registry.versions():
        registry.mark(state.model_version, state.state, detail)


def sign_off_release(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    model_version: str,
    *,
    signer: str,
    rationale: str,
    via: str = "cli",
    at: dt.datetime | None = None,
) -> ReleaseState:
    """Record one approver's sign-off; the last one required approves and promotes the version.

    Raises:
        OversightError: The policy is automatic, the version has no recommendation awaiting
            sign-off (held, rolled back or already approved), the signer is not an approver, is the
            proposer under four eyes, or has signed already, or the rationale is empty; nothing is
            written.
    """
    signer = signer.strip()
    if not signer:
        raise OversightError("say who signs off (--by)", context={"assessment": assessment.id})
    if not rationale or not rationale.strip():
        raise OversightError(
            "a rationale is required to sign a release off",
            context={"assessment": assessment.id, "model_version": model_version},
        )
    (state,) = release_state(conn, assessment.id, model_version) or [None]
    role = check_sign_off(
        assessment.spec.release.sign_off,
        state,
        assessment_id=assessment.id,
        model_version=model_version,
        signer=signer,
    )
    assert state is not None
    at = at or dt.datetime.now(dt.UTC)
    record_sign_off(
        conn,
        assessment.id,
        state,
        signer=signer,
        role=role,
        rationale=rationale.strip(),
        via=via,
        at=at,
    )
    (after,) = release_state(conn, assessment.id, model_version)
    if after.state == "approved":
        detail = {
            "signed_off_by": after.signers,
            "approved_at": at,
            "partition": after.partition_key,
        }
        _mark(assessment, after, detail)
        if assessment.registry is not None and model_version in assessment.registry.versions():
            assessment.registry.promote(model_version, detail)
    return after
