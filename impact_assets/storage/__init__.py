"""The DuckDB results store (schema ``impact``): opening it, migrations and writes."""

from impact_assets.storage._connect import DEFAULT_LOCK_TIMEOUT, connect
from impact_assets.storage._schema import MIGRATIONS, SCHEMA, Migration
from impact_assets.storage._store import append_frame, migrate

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MIGRATIONS",
    "SCHEMA",
    "Migration",
    "append_frame",
    "connect",
    "migrate",
]
