"""Writing register snapshots: one transaction each, append-only, versioned per partition."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass

import duckdb
import pandas as pd

from impact_assets.errors import StorageError
from impact_assets.register._evaluate import STATUSES, EntryResult
from impact_assets.register._governance import ImpactLevel, apply_governance, impact_level
from impact_assets.spec import ACTION_TYPES, GovernanceSpec, ImpactLevelSpec, RegisterEntry
from impact_assets.storage import SCHEMA, append_frame

__all__ = ["Snapshot", "by_severity", "current_register", "write_snapshot"]

CONFLICT_RETRIES = 20
SNAPSHOT_FAILED = "the register snapshot of partition {partition} was not written (nothing of it was kept): {message}"


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    snapshot_version: int
    entries: pd.DataFrame
    impact_level: ImpactLevel | None = None


def write_snapshot(
    conn: duckdb.DuckDBPyConnection,
    *,
    assessment_id: str,
    partition_key: str,
    run_id: str,
    model_version: str,
    data_version: str,
    entries: tuple[RegisterEntry, ...],
    results: list[EntryResult],
    governance: GovernanceSpec | None = None,
    impact: ImpactLevelSpec | None = None,
    taken_at: dt.datetime | None = None,
    reason: str | None = None,
) -> Snapshot:
    """Append a snapshot, its entries, its changes and governance actions, and mark the run completed.

    All in one transaction. Re-running a partition adds snapshot version ``k + 1``; nothing earlier is
    touched.

    ``reason`` says why the snapshot was taken when it is not the partition's own run (e.g.
    ``outcomes arrived``).

    Raises:
        StorageError: The write failed; the transaction is rolled back, so no partial snapshot exists.
    """
    by_id = {e.id: e for e in entries}
    snapshot_id = str(uuid.uuid4())
    taken_at = taken_at or dt.datetime.now(dt.UTC)
    level = (
        impact_level(impact, {r.entry_id: r.status for r in results})
        if impact is not None
        else None
    )
    frame = pd.DataFrame(
        [
            {
                "snapshot_id": snapshot_id,
                "assessment_id": assessment_id,
                "entry_id": r.entry_id,
                "outcome": by_id[r.entry_id].outcome,
                "stakeholder": by_id[r.entry_id].stakeholder,
                "impact": by_id[r.entry_id].impact,
                "metric_ref": r.metric_ref,
                "value": r.value,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "n": r.n,
                "direction": by_id[r.entry_id].thresholds.direction,
                "threshold_warn": by_id[r.entry_id].thresholds.warn,
                "threshold_breach": by_id[r.entry_id].thresholds.breach,
                "status": r.status,
                "reason": r.reason,
                "owner": by_id[r.entry_id].owner,
                "action": by_id[r.entry_id].action,
                "frameworks": list(by_id[r.entry_id].frameworks),
                "basis": r.basis,
                "cohort_key": r.cohort_key,
                "matures_on": r.matures_on,
            }
            for r in results
        ]
    )
    frame = frame.astype(
        {
            "value": "float64",
            "ci_low": "float64",
            "ci_high": "float64",
            "threshold_warn": "float64",
            "n": "Int64",
        }
    )
    for attempt in range(CONFLICT_RETRIES):
        try:
            with _writer_lock(conn):
                version = _write(
                    conn,
                    snapshot_id,
                    assessment_id,
                    partition_key,
                    run_id,
                    model_version,
                    data_version,
                    taken_at,
                    level,
                    frame,
                    entries,
                    results,
                    governance,
                    reason,
                )
            break
        except duckdb.TransactionException:
            # another writer took the same snapshot version first: try again with the next one
            if attempt == CONFLICT_RETRIES - 1:
                raise StorageError(
                    SNAPSHOT_FAILED.format(
                        partition=partition_key, message="too many concurrent writers"
                    ),
                    context={"assessment": assessment_id},
                ) from None
            time.sleep(0.01 * (attempt + 1))
    return Snapshot(
        snapshot_id=snapshot_id, snapshot_version=int(version), entries=frame, impact_level=level
    )


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _writer_lock(conn: duckdb.DuckDBPyConnection) -> threading.Lock:
    """One lock per database file in this process.

    Connections of one process to one file share a database and write with optimistic concurrency:
    two snapshots of the same entry racing could both open an action. Serializing snapshot writes per
    file prevents that; across processes DuckDB's own file lock already lets one writer in at a time.
    """
    name = (
        conn.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()[0][0]
        or ":memory:"
    )
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(name), threading.Lock())


def _write(
    conn,
    snapshot_id,
    assessment_id,
    partition_key,
    run_id,
    model_version,
    data_version,
    taken_at,
    level,
    frame,
    entries,
    results,
    governance,
    reason,
) -> int:
    conn.execute("BEGIN TRANSACTION")
    try:
        version = conn.execute(
            f"SELECT coalesce(max(snapshot_version), 0) + 1 FROM {SCHEMA}.register_snapshots WHERE assessment_id = ? AND partition_key = ?",
            [assessment_id, partition_key],
        ).fetchall()[0][0]
        conn.execute(
            f"INSERT INTO {SCHEMA}.register_snapshots (snapshot_id, assessment_id, partition_key, run_id, model_version, data_version, taken_at, "
            "snapshot_version, raw_impact_score, mitigation_score, impact_score, impact_level, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                snapshot_id,
                assessment_id,
                partition_key,
                run_id,
                model_version,
                data_version,
                taken_at,
                version,
                level.raw_score if level else None,
                level.mitigation_score if level else None,
                level.score if level else None,
                level.level if level else None,
                reason,
            ],
        )
        append_frame(conn, "register_entries", frame)
        apply_governance(
            conn,
            assessment_id=assessment_id,
            snapshot_id=snapshot_id,
            partition_key=partition_key,
            snapshot_version=int(version),
            taken_at=taken_at,
            entries=entries,
            results=results,
            governance=governance or GovernanceSpec(),
            model_version=model_version,
        )
        conn.execute(
            f"INSERT INTO {SCHEMA}.runs (run_id, assessment_id, partition_key, model_version, data_version, started_at, finished_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'completed') "
            "ON CONFLICT DO UPDATE SET finished_at = excluded.finished_at, status = 'completed', model_version = excluded.model_version, data_version = excluded.data_version",
            [run_id, assessment_id, partition_key, model_version, data_version, taken_at, taken_at],
        )
        conn.execute("COMMIT")
    except duckdb.TransactionException:
        conn.execute("ROLLBACK")
        raise
    except (duckdb.Error, StorageError) as exc:
        conn.execute("ROLLBACK")
        if "conflict" in str(exc).lower() or isinstance(exc, duckdb.ConstraintException):
            raise duckdb.TransactionException(str(exc)) from exc
        raise StorageError(
            SNAPSHOT_FAILED.format(partition=partition_key, message=exc),
            context={"assessment": assessment_id},
        ) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(version)


def current_register(
    conn: duckdb.DuckDBPyConnection, assessment_id: str, model_version: str | None = None
) -> pd.DataFrame:
    """One snapshot of every partition of an assessment, one row per entry, newest partition first.

    Args:
        model_version: The version whose snapshot heads each partition it assessed (the serving
            one, for a reviewer); other partitions, and every partition when ``None``, show their
            latest snapshot whatever version it assessed.
    """
    return conn.execute(
        f"""
        WITH latest AS (
            SELECT * FROM {SCHEMA}.register_snapshots WHERE assessment_id = $a
            QUALIFY row_number() OVER (
                PARTITION BY partition_key
                ORDER BY coalesce(model_version = $v, false) DESC, snapshot_version DESC) = 1
        )
        SELECT l.partition_key, l.snapshot_version, l.model_version, e.entry_id, e.value, e.ci_low, e.ci_high, e.n, e.status, e.reason,
               e.basis, e.matures_on, e.owner, e.action
        FROM latest AS l JOIN {SCHEMA}.register_entries AS e USING (snapshot_id)
        ORDER BY l.partition_key DESC, e.entry_id
        """,
        {"a": assessment_id, "v": model_version},
    ).df()


def by_severity(entries: pd.DataFrame) -> pd.DataFrame:
    """Entries ordered breaches first (rollback before notify), then by id."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    act = {a: i for i, a in enumerate(ACTION_TYPES)}
    return (
        entries.assign(
            _s=entries["status"].map(rank).fillna(len(rank)),
            _a=entries["action"].map(act).fillna(len(act)),
        )
        .sort_values(["_s", "_a", "entry_id"], kind="stable")
        .drop(columns=["_s", "_a"])
        .reset_index(drop=True)
    )
