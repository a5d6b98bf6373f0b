"""Where an assessment's row-level SQL runs: DuckDB (default) or Spark, transpiled with sqlglot."""

from impact_assets.engine._spark import (
    MASTER_ENV,
    NO_PYSPARK,
    SparkEngine,
    SparkEngineError,
    engine_for,
    table_location,
)
from impact_assets.engine._transpile import TranspileError, to_spark

__all__ = [
    "MASTER_ENV",
    "NO_PYSPARK",
    "SparkEngine",
    "SparkEngineError",
    "TranspileError",
    "engine_for",
    "table_location",
    "to_spark",
]
