"""Running SQL models and exposing sources in DuckDB, one daily partition at a time.

A partition of a model is replaced in one transaction: its rows are deleted and the model's query,
filtered to the partition, is inserted. If the query's columns changed since the table was created,
the table is rebuilt from the whole query instead (it is a pure function of its inputs). A failure
rolls back, leaving the table as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import duckdb

from impact_assets.errors import SqlModelError
from impact_assets.sql._models import SqlModel
from impact_assets.sql._quote import ident, qualified

__all__ = [
    "MaterializedPartition",
    "ensure_schema",
    "materialize_partition",
    "partition_fingerprint",
    "relation_columns",
    "relation_types",
    "table_columns",
    "with_columns_replaced",
]

EXECUTION_ERROR = "DuckDB could not run the model: {message}"
MISSING_PARTITION_COLUMN = (
    "the model's output has no partition column {column!r} (columns: {columns})"
)

_LINE = re.compile(r"LINE (\d+):")


@dataclass(frozen=True)
class MaterializedPartition:
    """What one partition run of a model wrote."""

    table: str
    partition_rows: int
    total_rows: int
    columns: tuple[tuple[str, str], ...]
    rebuilt: bool


def ensure_schema(conn: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Create the assessment's data schema if it does not exist."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")


def table_columns(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str
) -> tuple[tuple[str, str], ...]:
    """(name, type) of a table's columns in order; empty when it does not exist."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return tuple((str(n), str(t)) for n, t in rows)


def relation_types(conn: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name to type of a relation (a quoted table or a parenthesized query), on either engine."""
    if getattr(conn, "kind", "duckdb") == "spark":
        return dict(conn.columns(relation))
    return {
        str(r[0]): str(r[1]) for r in conn.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    }


def relation_columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Column names of a relation, in order, on either engine."""
    return list(relation_types(conn, relation))


def with_columns_replaced(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    replacements: dict[str, str],
    *,
    qualifier: str = "",
    tail: str = "",
) -> str:
    """``(SELECT <every column, some replaced by an expression> FROM relation <tail>)``.

    The portable form of DuckDB's ``SELECT * REPLACE (...)``, which Spark SQL lacks.
    """
    columns = [
        f"{replacements[c]} AS {ident(c)}" if c in replacements else f"{qualifier}{ident(c)}"
        for c in relation_columns(conn, relation)
    ]
    return f"(SELECT {', '.join(columns)} FROM {relation} {tail})"


def partition_fingerprint(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    partition_column: str,
    partition_key: str | None = None,
) -> dict[str, str]:
    """Content fingerprint per partition of a table or view: order-independent hash of its rows.

    Args:
        relation: Quoted ``schema.table``.
        partition_column: The date column partitions are cut on.
        partition_key: Only this partition (``YYYY-MM-DD``); all when ``None``.

    Returns:
        ``{partition_key: fingerprint}``; a partition with no rows is absent.
    """
    where = (
        f"WHERE CAST(r.{ident(partition_column)} AS DATE) = CAST(? AS DATE)"
        if partition_key
        else ""
    )
    rows = conn.execute(
        f"SELECT strftime(CAST(r.{ident(partition_column)} AS DATE), '%Y-%m-%d') AS p, count(*) AS n, "
        f"CAST(sum(hash(r)) AS VARCHAR) AS h, CAST(bit_xor(hash(r)) AS VARCHAR) AS x "
        f"FROM {relation} AS r {where} GROUP BY p ORDER BY p",
        [partition_key] if partition_key else [],
    ).fetchall()
    return {
        p: hashlib.sha256(f"{n}:{h}:{x}".encode()).hexdigest()[:16]
        for p, n, h, x in rows
        if p is not None
    }


def _model_error(model: SqlModel, exc: duckdb.Error, line_offset: int) -> SqlModelError:
    message = str(exc)
    match = _LINE.search(message)
    line = int(match.group(1)) - line_offset if match else None
    return SqlModelError(
        EXECUTION_ERROR.format(message=message.splitlines()[0]),
        context={
            "model": str(model.path),
            "line": line if line and line > 0 else None,
            "duckdb": message,
        },
    )


def materialize_partition(
    conn: duckdb.DuckDBPyConnection,
    model: SqlModel,
    *,
    schema: str,
    partition_column: str,
    partition_key: str,
) -> MaterializedPartition:
    """Replace one daily partition of ``model``'s table with the rows its query gives for that day.

    Raises:
        SqlModelError: The query fails in DuckDB (file and line of the model in the message) or
            does not produce the partition column. Nothing is changed then.
    """
    target = qualified(schema, model.name)
    query = model.sql.strip().rstrip(";").strip()
    # The model's text starts on line 2 of every statement below, so DuckDB's "LINE n" is n - 1 in the file.
    partition_filter = f"WHERE CAST(_model.{ident(partition_column)} AS DATE) = CAST(? AS DATE)"
    filtered = f"SELECT * FROM (\n{query}\n) AS _model {partition_filter}"
    conn.execute("BEGIN TRANSACTION")
    try:
        described = conn.execute(f"DESCRIBE SELECT * FROM (\n{query}\n) AS _model").fetchall()
        columns = tuple((str(r[0]), str(r[1])) for r in described)
        if partition_column not in {c for c, _ in columns}:
            raise SqlModelError(
                MISSING_PARTITION_COLUMN.format(
                    column=partition_column, columns=[c for c, _ in columns]
                ),
                context={"model": str(model.path)},
            )
        existing = table_columns(conn, schema, model.name)
        rebuilt = bool(existing) and existing != columns
        if not existing:
            conn.execute(f"CREATE TABLE {target} AS {filtered}", [partition_key])
        elif rebuilt:
            conn.execute(
                f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM (\n{query}\n) AS _model"
            )
        else:
            conn.execute(
                f"DELETE FROM {target} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)",
                [partition_key],
            )
            conn.execute(f"INSERT INTO {target} BY NAME {filtered}", [partition_key])
        partition_rows = conn.execute(
            f"SELECT count(*) FROM {target} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)",
            [partition_key],
        ).fetchall()[0][0]
        total_rows = conn.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        conn.execute("ROLLBACK")
        raise _model_error(model, exc, line_offset=1) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return MaterializedPartition(
        table=f"{schema}.{model.name}",
        partition_rows=int(partition_rows),
        total_rows=int(total_rows),
        columns=columns,
        rebuilt=rebuilt,
    )
