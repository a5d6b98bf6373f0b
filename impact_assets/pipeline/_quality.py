"""Data-quality expectations on a partition: the frame Great Expectations checks, results, and
which failures block the metrics.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.engine import SparkEngine
from impact_assets.errors import DataContractError
from impact_assets.pipeline._engine import row_engine
from impact_assets.quality import QualityResult, assessment_checks, evaluate_checks
from impact_assets.sql import compact_frame, ident, qualified, relation_columns
from impact_assets.storage import SCHEMA, append_frame

#: Built-in blocking check recorded when the fairness step itself refuses a partition's data.
CONTRACT_CHECK = "fairness_inputs_meet_the_contract"
#: Built-in blocking check recorded on a source or SQL model whose rows of a partition DuckDB cannot
#: read or convert (a CSV file with text where numbers belong, a cast that fails on the day's data).
READABLE_CHECK = "data_is_readable"
#: The built-in checks whose reason the register repeats.
_BUILT_IN = (CONTRACT_CHECK, READABLE_CHECK)


def record_builtin_check(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    *,
    table: str,
    check: str,
    expectation: str,
    message: str | None = None,
    blocking: bool = True,
    severity: str = "error",
) -> None:
    """Append a result of a built-in check (by default a blocking ``error``) to
    ``impact.quality_results``: failed with ``message``, or passed without one (so a corrected
    partition is no longer blocked)."""
    append_frame(
        conn,
        "quality_results",
        pd.DataFrame(
            [
                {
                    "run_id": run_id,
                    "assessment_id": assessment.id,
                    "partition_key": partition_key,
                    "table_name": table,
                    "check_name": check,
                    "expectation": expectation,
                    "kwargs": "{}",
                    "severity": severity,
                    "blocking": blocking,
                    "success": message is None,
                    "observed_value": message,
                    "element_count": None,
                    "unexpected_count": None,
                    "unexpected_percent": None,
                    "evaluated_at": dt.datetime.now(dt.UTC),
                }
            ]
        ).astype(
            {"element_count": "Int64", "unexpected_count": "Int64", "unexpected_percent": "float64"}
        ),
    )


def _quality_relation(assessment: Assessment, table: str) -> tuple[str, str]:
    if table in assessment.spec.sources:
        return qualified(assessment.schema, table), assessment.source_partition_column(table)
    return qualified(assessment.schema, table), assessment.spec.bindings.partition_column


def run_quality(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    table: str,
    partition_key: str,
    run_id: str,
) -> list[QualityResult]:
    """Evaluate the expectations on one table for one partition and record them in ``impact.quality_results``.

    Only the partition's rows and the columns the expectations name are loaded (the GX frame is bounded).
    """
    checks = [
        c.for_partition(assessment.spec, partition_key)
        for c in assessment_checks(assessment.spec)
        if c.table == table
    ]
    if not checks:
        return []
    relation, partition_column = _quality_relation(assessment, table)
    columns: list[str] = []
    for check in checks:
        for key in ("column", "column_A", "column_B"):
            if key in check.kwargs and check.kwargs[key] not in columns:
                columns.append(check.kwargs[key])
        for column in check.kwargs.get("column_list", []) or []:
            if column not in columns:
                columns.append(column)
    columns = columns or [partition_column]
    engine = row_engine(conn, assessment)
    present = relation_columns(engine, relation)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataContractError(
            f"the data-quality checks on {table!r} name columns it does not have: {missing} (it has {present})",
            context={"assessment": assessment.id, "table": table, "file": assessment.source.path},
        )
    query = f"SELECT {', '.join(ident(c) for c in columns)} FROM {relation} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)"
    frame = (  # on Spark, GX validates the Spark DataFrame: no row comes to this process
        engine.frame(query, [partition_key])
        if isinstance(engine, SparkEngine)
        else compact_frame(conn, query, [partition_key])
    )
    sensitive = {f.name for f in assessment.spec.bindings.sensitive_features}
    results = evaluate_checks(frame, checks, sensitive_columns=sensitive)
    now = dt.datetime.now(dt.UTC)
    rows = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "assessment_id": assessment.id,
                "partition_key": partition_key,
                "table_name": table,
                "check_name": r.check.name,
                "expectation": r.check.expectation,
                "kwargs": r.check.kwargs_json,
                "severity": r.check.severity,
                "blocking": r.check.blocking,
                "success": r.success,
                "observed_value": r.observed_value,
                "element_count": r.element_count,
                "unexpected_count": r.unexpected_count,
                "unexpected_percent": r.unexpected_percent,
                "evaluated_at": now,
            }
            for r in results
        ]
    ).astype(
        {"element_count": "Int64", "unexpected_count": "Int64", "unexpected_percent": "float64"}
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"DELETE FROM {SCHEMA}.quality_results WHERE run_id = ? AND assessment_id = ? AND partition_key = ? AND table_name = ?",
            [run_id, assessment.id, partition_key, table],
        )
        append_frame(conn, "quality_results", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def blocking_failures(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    *,
    ignore: tuple[str, ...] = (),
) -> list[str]:
    """Blocking ``error`` checks whose latest evaluation on the partition failed, as ``table.check``.

    Args:
        ignore: Checks left out, as the step about to evaluate them again does.
    """
    current = {
        (c.table, c.name)
        for c in assessment_checks(assessment.spec)
        if c.blocking and c.severity == "error"
    }
    current.add((assessment.spec.bindings.scored_table, CONTRACT_CHECK))
    current |= {(t, READABLE_CHECK) for t in [*assessment.spec.sources, *assessment.sql.models]}
    rows = conn.execute(
        f"""
        SELECT table_name, check_name, success, observed_value FROM {SCHEMA}.quality_results
        WHERE assessment_id = ? AND partition_key = ?
        QUALIFY row_number() OVER (PARTITION BY table_name, check_name ORDER BY evaluated_at DESC) = 1
        """,
        [assessment.id, partition_key],
    ).fetchall()
    return sorted(
        f"{table}.{name}" + (f" ({detail})" if name in _BUILT_IN else "")
        for table, name, success, detail in rows
        if not success and (table, name) in current and name not in ignore
    )
