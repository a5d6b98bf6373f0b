"""The register snapshot of a partition, and failed runs recorded for the owners."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import duckdb

from impact_assets.assessment import Assessment
from impact_assets.outcomes import needs_outcomes
from impact_assets.oversight import live_action, record_event, record_notice
from impact_assets.pipeline._engine import UNVERSIONED
from impact_assets.pipeline._outcomes import cohort_state
from impact_assets.pipeline._quality import READABLE_CHECK, blocking_failures, record_builtin_check
from impact_assets.pipeline._results import latest_results, model_version_in
from impact_assets.pipeline._sql_models import data_version
from impact_assets.register import (
    EntryResult,
    Snapshot,
    blocked_register,
    evaluate_awaited,
    evaluate_entry,
    write_snapshot,
)
from impact_assets.sql import qualified
from impact_assets.storage import SCHEMA

RUN_FAILURE_ENTRY = "__assessment_run__"


def record_run_failure(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    *,
    run_id: str,
    partition_key: str | None,
    message: str,
    at: dt.datetime | None = None,
) -> str:
    """Record a failed assessment run: ``impact.runs`` row ``failed`` and a governance action for the owners.

    One action stays open per assessment for failed runs; later failures are recorded on it as events.
    Returns the action id.
    """
    at = at or dt.datetime.now(dt.UTC)
    owner = assessment.spec.owners[0]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"INSERT INTO {SCHEMA}.runs (run_id, assessment_id, partition_key, model_version, data_version, started_at, finished_at, status) "
            "VALUES (?, ?, ?, 'unknown', 'unknown', ?, ?, 'failed') ON CONFLICT DO UPDATE SET status = 'failed', finished_at = excluded.finished_at",
            [run_id, assessment.id, partition_key or "", at, at],
        )
        live = live_action(conn, assessment.id, RUN_FAILURE_ENTRY)
        detail = f"run {run_id} of partition {partition_key or '-'} failed: {message}"
        if live is not None:
            action_id = live.action_id
        else:
            action_id = str(uuid.uuid4())
            conn.execute(
                f"INSERT INTO {SCHEMA}.governance_actions VALUES (?, ?, ?, ?, 'review', ?, ?, NULL, [], NULL)",
                [action_id, assessment.id, RUN_FAILURE_ENTRY, owner, at, at + dt.timedelta(days=1)],
            )
        record_event(conn, action_id, "run_failed", at=at, detail=detail)
        record_notice(
            conn,
            assessment_id=assessment.id,
            kind="run_failed",
            subject=f"[{assessment.id}] assessment run of {partition_key or '-'} failed",
            at=at,
            details={"run_id": run_id, "message": message, "owner": owner},
            partition_key=partition_key,
            action_id=action_id,
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return action_id


BLOCKED_BY_QUALITY = "failed blocking data-quality checks: {checks}"


def snapshot_register(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    *,
    reason: str | None = None,
    today: dt.date | None = None,
) -> tuple[Snapshot, list[EntryResult]]:
    """Evaluate every register entry on the partition's newest results and append a snapshot.

    When a blocking data-quality check failed on the partition, no entry is evaluated on that data:
    each is ``insufficient_data`` with the failing checks as the reason. With outcomes that arrive
    late, the entries that need them are evaluated on the partition's cohort, its maturity judged
    on ``today`` (default: today in the partitions' timezone).
    """
    failures = blocking_failures(conn, assessment, partition_key)
    if failures:
        version = data_version(conn, assessment, partition_key, run_id)
        evaluated = blocked_register(
            assessment.spec.register_entries, BLOCKED_BY_QUALITY.format(checks=", ".join(failures))
        )
        try:
            model_version = model_version_in(
                conn,
                qualified(assessment.schema, assessment.spec.bindings.scored_table),
                assessment,
                partition_key,
            )
        except duckdb.Error:
            model_version = UNVERSIONED
    else:
        results, model_version, version = latest_results(conn, assessment, partition_key)
        spec = assessment.spec
        cohort = (
            cohort_state(conn, assessment, partition_key, today=today)
            if spec.outcomes is not None
            else None
        )
        evaluated = [_evaluate(entry, results, cohort, spec) for entry in spec.register_entries]
    snapshot = write_snapshot(
        conn,
        assessment_id=assessment.id,
        partition_key=partition_key,
        run_id=run_id,
        model_version=model_version,
        data_version=version,
        entries=assessment.spec.register_entries,
        results=evaluated,
        governance=assessment.spec.governance,
        impact=assessment.spec.impact_level,
        reason=reason,
    )
    return snapshot, evaluated


def _evaluate(entry, results, cohort, spec) -> EntryResult:
    """An entry on the partition's results, or on its cohort's when it needs outcomes."""
    if cohort is None:
        return evaluate_entry(entry, results)
    if needs_outcomes(entry, spec):
        return evaluate_awaited(entry, results, cohort)
    return replace(evaluate_entry(entry, results), basis="decision_time")


#: What a user reads when a partition's data cannot be read: at most a few lines, DuckDB's included.
NOT_ASSESSED = (
    "partition {partition} is not assessed: {problem}\n"
    "{duckdb}\n"
    "Its register entries are insufficient_data with this reason; other days are assessed as usual.\n"
    "What to do: {remedy}, then assess {partition} again."
)
FIX_THE_FILE = "correct or replace {file}"
FIX_THE_DATA = "correct the day's data, or make the SQL model handle it ({model})"


def record_unreadable_partition(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    *,
    table: str,
    problem: str,
    duckdb_message: str,
    remedy: str,
) -> str:
    """Record that DuckDB cannot read a partition's rows of ``table`` (a source or SQL model).

    Appends the failed blocking check ``data_is_readable`` on ``table`` and a register snapshot whose
    entries are all ``insufficient_data`` with that reason, in the step that met the problem (the
    steps after it do not run).

    Returns:
        The message to fail the step with: the partition, the problem, DuckDB's own words, what to do.
    """
    record_builtin_check(
        conn,
        assessment,
        partition_key,
        run_id,
        table=table,
        check=READABLE_CHECK,
        expectation="impact_assets.readable",
        message=f"{problem}: {' / '.join(duckdb_message.splitlines())}",
    )
    snapshot_register(conn, assessment, partition_key, run_id)
    return NOT_ASSESSED.format(
        partition=partition_key,
        problem=problem,
        duckdb="\n".join(f"  {line}" for line in duckdb_message.splitlines()),
        remedy=remedy,
    )


def record_readable(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    table: str,
) -> None:
    """Record that the partition's rows of ``table`` were read: an earlier ``data_is_readable``
    failure of the partition (a file since corrected) no longer blocks its register."""
    record_builtin_check(
        conn,
        assessment,
        partition_key,
        run_id,
        table=table,
        check=READABLE_CHECK,
        expectation="impact_assets.readable",
    )
