"""Opening the results schema and writing to it."""

from __future__ import annotations

import duckdb
import pandas as pd

from impact_assets.errors import StorageError
from impact_assets.sql import ident
from impact_assets.storage._schema import MIGRATIONS, SCHEMA

__all__ = ["append_frame", "migrate"]

MIGRATION_FAILED = (
    "the results schema could not be migrated to version {version} ({description}): {message}"
)
WRITE_FAILED = "could not write to {table}: {message}"


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring schema ``impact`` to the latest version; each migration in its own transaction.

    Returns:
        The schema version now in place.
    """
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
        "(version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {
        row[0] for row in conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations").fetchall()
    }
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {SCHEMA}.schema_migrations VALUES (?, ?, now())",
                [migration.version, migration.description],
            )
            conn.execute("COMMIT")
        except duckdb.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(
                MIGRATION_FAILED.format(
                    version=migration.version, description=migration.description, message=exc
                )
            ) from exc
    return max(m.version for m in MIGRATIONS)


def append_frame(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert ``frame``'s rows into ``impact.<table>`` by column name (types cast to the table's).

    Runs inside the caller's transaction, if any. Returns the number of rows written.
    """
    if frame.empty:
        return 0
    view = f"_append_{table}"
    conn.register(view, frame)
    try:
        conn.execute(f"INSERT INTO {SCHEMA}.{ident(table)} BY NAME SELECT * FROM {ident(view)}")
    except duckdb.Error as exc:
        raise StorageError(
            WRITE_FAILED.format(table=f"{SCHEMA}.{table}", message=exc),
            context={"table": f"{SCHEMA}.{table}"},
        ) from exc
    finally:
        conn.unregister(view)
    return len(frame)
