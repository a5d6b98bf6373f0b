"""The DuckDB results store (schema ``impact``): migrations and writes."""

from impact_assets.storage._schema import MIGRATIONS, SCHEMA, Migration
from impact_assets.storage._store import append_frame, migrate

__all__ = ["MIGRATIONS", "SCHEMA", "Migration", "append_frame", "migrate"]
