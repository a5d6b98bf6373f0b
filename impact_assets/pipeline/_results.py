"""Result rows keyed by run, partition, model and data version: replaced per partition, read back
as the newest of each partition for the register.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.pipeline._engine import UNVERSIONED, row_engine
from impact_assets.pipeline._sql_models import data_version
from impact_assets.sql import ident, qualified
from impact_assets.storage import SCHEMA, append_frame


def model_version_in(
    conn: duckdb.DuckDBPyConnection, relation: str, assessment: Assessment, partition_key: str
) -> str:
    columns = assessment.sql.columns.get(assessment.spec.bindings.scored_table) or ()
    if "model_version" not in columns:
        return UNVERSIONED
    rows = conn.execute(
        f"SELECT DISTINCT CAST(model_version AS VARCHAR) FROM {relation} "
        f"WHERE CAST({ident(assessment.spec.bindings.partition_column)} AS DATE) = CAST(? AS DATE) ORDER BY 1",
        [partition_key],
    ).fetchall()
    return "+".join(str(r[0]) for r in rows) or UNVERSIONED


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    rows: pd.DataFrame,
) -> None:
    """Replace this run's rows of a partition in ``impact.<table>``, in one transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"DELETE FROM {SCHEMA}.{table} WHERE run_id = ? AND assessment_id = ? AND partition_key = ?",
            [run_id, assessment.id, partition_key],
        )
        append_frame(conn, table, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def result_keys(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> dict[str, object]:
    relation = qualified(assessment.schema, assessment.spec.bindings.scored_table)
    return {
        "run_id": run_id,
        "assessment_id": assessment.id,
        "partition_key": partition_key,
        "model_version": model_version_in(
            row_engine(conn, assessment), relation, assessment, partition_key
        ),
        "data_version": data_version(conn, assessment, partition_key, run_id),
        "computed_at": dt.datetime.now(dt.UTC),
    }


def latest_results(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> tuple[dict[str, pd.DataFrame], str, str]:
    """The newest group metrics and disparities of a partition, with their model and data versions."""
    latest = conn.execute(
        f"SELECT run_id, model_version, data_version FROM {SCHEMA}.group_metrics WHERE assessment_id = ? AND partition_key = ? "
        "ORDER BY computed_at DESC LIMIT 1",
        [assessment.id, partition_key],
    ).fetchall()
    if not latest:
        return (
            {
                "quality_results": latest_quality(conn, assessment, partition_key),
                **latest_analytics(conn, assessment, partition_key),
            },
            UNVERSIONED,
            "unknown",
        )
    run_id, model_version, version = latest[0]
    results = {
        table: conn.execute(
            f"SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ? AND run_id = ?",
            [assessment.id, partition_key, run_id],
        ).df()
        for table in ("group_metrics", "disparities")
    }
    results["quality_results"] = latest_quality(conn, assessment, partition_key)
    results.update(latest_analytics(conn, assessment, partition_key))
    return results, model_version, version


def latest_analytics(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> dict[str, pd.DataFrame]:
    """The newest run's analytics results of a partition (KPIs, drift, scenarios, sensitivity, causal)."""
    return {
        table: conn.execute(
            f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ?
                QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
            [assessment.id, partition_key],
        ).df()
        for table in ("kpis", "drift", "scenarios", "sensitivity", "causal_estimates")
    }


def latest_quality(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> pd.DataFrame:
    """The latest evaluation of each quality check on a partition."""
    return conn.execute(
        f"""SELECT * FROM {SCHEMA}.quality_results WHERE assessment_id = ? AND partition_key = ?
            QUALIFY row_number() OVER (PARTITION BY table_name, check_name ORDER BY evaluated_at DESC) = 1""",
        [assessment.id, partition_key],
    ).df()
