"""The release decision for the model version a partition's newest snapshot assessed."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import duckdb

from impact_assets.assessment import Assessment
from impact_assets.errors import ModelRegistryError
from impact_assets.register import release_decision
from impact_assets.storage import SCHEMA


@dataclass(frozen=True)
class ReleaseDecision:
    decision: str
    model_version: str
    rollback_to: str | None
    reasons: list[str]
    snapshot_id: str


NO_SNAPSHOT = (
    "partition {partition} has no register snapshot to decide on; materialize the register first"
)

NO_ROLLBACK_TARGET = "no earlier approved version to roll back to"


def decide_release(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    *,
    decided_at: dt.datetime | None = None,
) -> ReleaseDecision:
    """Decide on the model version of the partition's newest snapshot and record it.

    ``rollback`` names the last approved version (and marks this one rolled back in the registry, so
    scoring goes back to an approved version); without one, the decision is ``hold``.
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
    decision, reasons = release_decision(
        assessment.spec.register_entries, statuses, assessment.spec.release
    )
    rollback_to = None
    if decision == "rollback":
        target = conn.execute(
            f"SELECT model_version FROM {SCHEMA}.release_decisions WHERE assessment_id = ? AND decision = 'approve' AND model_version <> ? "
            "ORDER BY decided_at DESC LIMIT 1",
            [assessment.id, model_version],
        ).fetchall()
        if target:
            rollback_to = target[0][0]
        else:
            decision, reasons = "hold", [*reasons, NO_ROLLBACK_TARGET]
    decided_at = decided_at or dt.datetime.now(dt.UTC)
    conn.execute(
        f"INSERT INTO {SCHEMA}.release_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            str(uuid.uuid4()),
            assessment.id,
            model_version,
            decision,
            decided_at,
            snapshot_id,
            partition_key,
            rollback_to,
            reasons,
        ],
    )
    registry = assessment.registry
    if registry is not None and model_version in registry.versions():
        status = {"approve": "approved", "hold": "held", "rollback": "rolled_back"}[decision]
        registry.mark(
            model_version,
            status,
            {
                "decided_at": decided_at,
                "partition": partition_key,
                "reasons": reasons,
                "rollback_to": rollback_to,
            },
        )
    return ReleaseDecision(decision, model_version, rollback_to, reasons, snapshot_id)
