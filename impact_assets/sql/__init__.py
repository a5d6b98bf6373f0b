"""``dbt_like_sql``: plain SELECT files run in DuckDB, with dependencies and column lineage from sqlglot."""

from impact_assets.sql._fetch import compact_frame, stream_frames, write_parquet
from impact_assets.sql._models import ColumnDep, SqlModel, SqlProject, discover_models
from impact_assets.sql._quote import ident, literal, qualified
from impact_assets.sql._run import (
    MaterializedPartition,
    ensure_schema,
    materialize_partition,
    partition_fingerprint,
    relation_columns,
    relation_types,
    table_columns,
    with_columns_replaced,
)
from impact_assets.sql._sources import UnreadableFile, create_source_view

__all__ = [
    "ColumnDep",
    "MaterializedPartition",
    "SqlModel",
    "SqlProject",
    "UnreadableFile",
    "compact_frame",
    "create_source_view",
    "discover_models",
    "ensure_schema",
    "ident",
    "literal",
    "materialize_partition",
    "partition_fingerprint",
    "qualified",
    "relation_columns",
    "relation_types",
    "stream_frames",
    "table_columns",
    "with_columns_replaced",
    "write_parquet",
]
