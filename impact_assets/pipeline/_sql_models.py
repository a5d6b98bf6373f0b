"""SQL models and their sources: per-partition fingerprints (data versions) and materialization."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import duckdb

from impact_assets.assessment import Assessment
from impact_assets.engine import SparkEngine
from impact_assets.errors import SqlModelError
from impact_assets.pipeline._engine import row_engine, spark_engine
from impact_assets.sql import (
    MaterializedPartition,
    UnreadableFile,
    create_source_view,
    ensure_schema,
    materialize_partition,
    partition_fingerprint,
    qualified,
)

#: Source fingerprints of a partition as first taken in a run, by (run, assessment, partition).
_RUN_FINGERPRINTS: OrderedDict[tuple[str, str, str], dict[str, dict[str, str]]] = OrderedDict()


def source_fingerprints(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str | None = None,
    run_id: str | None = None,
) -> dict[str, dict[str, str]]:
    """Content fingerprint of each source, per partition: ``{source: {partition: fingerprint}}``.

    With ``run_id`` (and a partition) the fingerprints are taken once per run in a process: every
    step of the run then reports the data version of the rows its SQL models read, and the sources
    (a full hash of every row) are not read again by each step.
    """
    key = (run_id, assessment.id, partition_key) if run_id and partition_key else None
    if key in _RUN_FINGERPRINTS:
        return _RUN_FINGERPRINTS[key]
    if assessment.spec.engine.kind == "spark":
        prints = _spark_fingerprints(assessment, partition_key)
    else:
        prints = {
            name: partition_fingerprint(
                conn,
                qualified(assessment.schema, name),
                assessment.source_partition_column(name),
                partition_key,
            )
            for name in assessment.decision_sources
        }
    if key is not None:
        _RUN_FINGERPRINTS[key] = prints
        while len(_RUN_FINGERPRINTS) > 64:
            _RUN_FINGERPRINTS.popitem(last=False)
    return prints


def _spark_fingerprints(
    assessment: Assessment, partition_key: str | None = None
) -> dict[str, dict[str, str]]:
    engine = spark_engine(assessment)
    return {
        name: engine.fingerprint(name, assessment.source_partition_column(name), partition_key)
        for name in assessment.decision_sources
    }


def file_fingerprints(assessment: Assessment) -> dict[str, dict[str, str]]:
    """Per-partition fingerprints of every source read straight from its files (no results database).

    The same function of the same rows as :func:`source_fingerprints`, so a sensor and a run agree.
    """
    if assessment.spec.engine.kind == "spark":
        try:
            return _spark_fingerprints(assessment)
        except SqlModelError:
            return {name: {} for name in assessment.decision_sources}  # no files yet
    with duckdb.connect() as conn:
        ensure_schema(conn, assessment.schema)
        prints = {}
        for name in assessment.decision_sources:
            source = assessment.spec.sources[name]
            try:
                create_source_view(
                    conn,
                    assessment.schema,
                    name,
                    assessment.source_path(name),
                    source.format,
                    partition_column=assessment.source_partition_column(name),
                )
            except SqlModelError:
                prints[name] = {}  # no files yet
                continue
            prints[name] = partition_fingerprint(
                conn, qualified(assessment.schema, name), assessment.source_partition_column(name)
            )
    return prints


def data_version(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str | None = None,
) -> str:
    """One fingerprint of every source's rows in a partition (taken once per run with ``run_id``)."""
    prints = source_fingerprints(conn, assessment, partition_key, run_id)
    text = ";".join(f"{name}={prints[name].get(partition_key, 'empty')}" for name in sorted(prints))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_sql_model(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, name: str, partition_key: str
) -> MaterializedPartition:
    """Materialize one partition of a SQL model."""
    rows = row_engine(conn, assessment)
    if isinstance(rows, SparkEngine):
        return rows.materialize(
            assessment.sql.models[name],
            partition_column=assessment.spec.bindings.partition_column,
            partition_key=partition_key,
        )
    return materialize_partition(
        conn,
        assessment.sql.models[name],
        schema=assessment.schema,
        partition_column=assessment.spec.bindings.partition_column,
        partition_key=partition_key,
    )


UNREADABLE_FILE = "source {source!r}: DuckDB cannot read the file {file}"


def unreadable_files(
    unreadable: dict[str, tuple[UnreadableFile, ...]], sources: list[str], partition_key: str
) -> list[tuple[str, UnreadableFile]]:
    """The set-aside files of ``sources`` (from :func:`prepare`) that hold rows of the partition."""
    return [
        (source, f)
        for source in sources
        for f in unreadable.get(source, ())
        if partition_key in f.partitions
    ]
