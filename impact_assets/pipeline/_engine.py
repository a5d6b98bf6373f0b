"""Where a partition's row-level work runs: the results connection or the Spark engine, and the
results schema and source views every step prepares first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import duckdb

from impact_assets.assessment import Assessment
from impact_assets.engine import SparkEngine, engine_for
from impact_assets.errors import SqlModelError
from impact_assets.modeling import PREDICTIONS_TABLE
from impact_assets.sql import (
    UnreadableFile,
    create_source_view,
    ensure_schema,
    ident,
    literal,
    qualified,
)
from impact_assets.storage import migrate

UNVERSIONED = "unversioned"

T = TypeVar("T")

R = TypeVar("R")


def row_engine(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment
) -> duckdb.DuckDBPyConnection | SparkEngine:
    """Where an assessment's row-level queries run: ``conn`` itself, or its Spark engine.

    Results are written through ``conn`` either way. The Spark engine is made once per process.
    """
    return spark_engine(assessment) if assessment.spec.engine.kind == "spark" else conn


def spark_engine(assessment: Assessment) -> SparkEngine:
    """The assessment's Spark engine, its sources and written tables registered in its catalog."""
    engine = engine_for(assessment.spec.engine.spark, assessment.schema, assessment.paths.expand)
    if not engine.registered:
        for name, source in assessment.spec.sources.items():
            engine.expose_source(name, str(assessment.source_path(name)), source.format)
        engine.register_tables([*assessment.sql.models, PREDICTIONS_TABLE])
        engine.registered = True
    return engine


def prepare(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, *, sources: bool = True
) -> dict[str, tuple[UnreadableFile, ...]]:
    """Migrate the results schema, create the data schema and (re)create the source views.

    Returns:
        Per source, the files set aside because DuckDB cannot read them (see
        :func:`impact_assets.sql.create_source_view`).
    """
    migrate(conn)
    ensure_schema(conn, assessment.schema)
    conn.execute(f"SET search_path = {literal(assessment.schema)}")
    unreadable: dict[str, tuple[UnreadableFile, ...]] = {}
    if sources and assessment.spec.engine.kind == "duckdb":
        outcomes = assessment.spec.outcomes
        for name, source in assessment.spec.sources.items():
            try:
                unreadable[name] = create_source_view(
                    conn,
                    assessment.schema,
                    name,
                    assessment.source_path(name),
                    source.format,
                    partition_column=assessment.source_partition_column(name),
                )
            except SqlModelError:
                if outcomes is None or name != outcomes.table:
                    raise
                _no_outcomes_yet(conn, assessment)  # a new deployment: no outcome has arrived
                unreadable[name] = ()
    return unreadable


def _no_outcomes_yet(conn: duckdb.DuckDBPyConnection, assessment: Assessment) -> None:
    """The outcomes source as an empty view of its declared columns (the id typed as the decisions')."""
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None and outcomes.table is not None
    scored = qualified(assessment.schema, b.scored_table)
    try:
        kind = conn.execute(f"SELECT typeof({ident(b.id_column)}) FROM {scored} LIMIT 1").fetchall()
    except duckdb.CatalogException:
        kind = []
    columns = {
        outcomes.id_column or b.id_column: kind[0][0] if kind else "VARCHAR",
        outcomes.label or b.label: "INTEGER",
        **({outcomes.observed_at: "DATE"} if outcomes.observed_at else {}),
    }
    listed = ", ".join(f"CAST(NULL AS {t}) AS {ident(c)}" for c, t in columns.items())
    conn.execute(
        f"CREATE OR REPLACE VIEW {qualified(assessment.schema, outcomes.table)} AS SELECT {listed} WHERE FALSE"
    )


def each_on_a_cursor(
    engine: duckdb.DuckDBPyConnection,
    work: Callable[[duckdb.DuckDBPyConnection, T], R],
    items: Sequence[T],
    *,
    threads: int = 2,
) -> list[R]:
    """``work(connection, item)`` of every item, in order, ``threads`` items at a time.

    On DuckDB each thread works on a cursor of its own: DuckDB's scans and numpy's sorts release the
    GIL, so one column's Python work overlaps another's query. A Spark session takes jobs from several
    threads, so one query's planning and scheduling overlap another's run.
    """
    if len(items) < 2:
        return [work(engine, item) for item in items]
    if not isinstance(engine, duckdb.DuckDBPyConnection):
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda item: work(engine, item), items))
    local = threading.local()
    cursors: list[duckdb.DuckDBPyConnection] = []

    def run(item: T) -> R:
        if not hasattr(local, "cursor"):
            local.cursor = engine.cursor()
            cursors.append(local.cursor)
        return work(local.cursor, item)

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, items))
    finally:  # every task has ended when the pool has shut down
        for cursor in cursors:
            cursor.close()
