"""Where an assessment's row-level SQL runs: DuckDB (default) or Spark, transpiled with sqlglot."""

from impact_assets.engine._spark import MASTER_ENV, SparkEngine, SparkEngineError, engine_for
from impact_assets.engine._transpile import TranspileError, to_spark

__all__ = [
    "MASTER_ENV",
    "SparkEngine",
    "SparkEngineError",
    "TranspileError",
    "engine_for",
    "to_spark",
]
