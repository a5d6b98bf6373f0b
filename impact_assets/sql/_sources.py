"""Sources as views that SQL models read, with the files DuckDB cannot read set aside.

A source is a glob of daily files, exposed as one view. One file a CSV reader cannot convert (an
outcome column with ``yes``/``no`` where the other days hold ``0``/``1``) would otherwise fail every
query on the view, and with it every day's assessment. So a CSV source's view is read once through
(every column converted) when it is created; a file DuckDB names in a conversion error is set aside
with DuckDB's message and the days it holds, and the view is made again from the other files. The
days of a set-aside file are not assessed on partial data: the pipeline reports them as unreadable
(see :func:`impact_assets.pipeline.unreadable_sources`). Parquet files carry their types and are read
as they are.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from impact_assets.errors import SqlModelError
from impact_assets.sql._quote import ident, literal, qualified

__all__ = ["UnreadableFile", "create_source_view"]

NO_SOURCE_FILES = "no files match the source path {path}"
SOURCE_ERROR = "source {name!r} cannot be read from {path}: {message}"
_FILE_IN_ERROR = re.compile(r"^\s*file = (.+?)\s*$", re.M)
_ISO_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
#: How many lines of DuckDB's message are kept: the error, the file's line, the column and value.
MESSAGE_LINES = 3


@dataclass(frozen=True)
class UnreadableFile:
    """A source file DuckDB could not read, what it said, and the partitions the file holds."""

    path: str
    message: str
    partitions: tuple[str, ...]


#: Files set aside, by the partition column and every file's (path, size, mtime) when it was read
#: through: a process reads a source's files once, until one of them changes.
_CHECKED: dict[tuple[str, tuple[tuple[str, int, int], ...]], tuple[UnreadableFile, ...]] = {}


def _stat(files: list[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in files:
        st = os.stat(f)
        out.append((f, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _short(exc: duckdb.Error) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(lines[:MESSAGE_LINES])


def _partitions_of(
    conn: duckdb.DuckDBPyConnection, path: str, partition_column: str
) -> tuple[str, ...]:
    """The days a file holds: its partition column read as text; else an ISO date in its name."""
    try:
        rows = conn.execute(
            f"SELECT DISTINCT strftime(TRY_CAST({ident(partition_column)} AS DATE), '%Y-%m-%d') AS d "
            f"FROM read_csv({literal(path)}, all_varchar = true) WHERE d IS NOT NULL ORDER BY d"
        ).fetchall()
        if rows:
            return tuple(str(r[0]) for r in rows)
    except duckdb.Error:
        pass  # not even text: fall back to the file's name
    return tuple(_ISO_DAY.findall(Path(path).name)[:1])


def _define(conn: duckdb.DuckDBPyConnection, view: str, reader: str, files: list[str]) -> None:
    listed = ", ".join(literal(f) for f in files)
    conn.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {reader}([{listed}], union_by_name = true)"
    )


def create_source_view(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    name: str,
    path: Path,
    file_format: str,
    *,
    partition_column: str | None = None,
) -> tuple[UnreadableFile, ...]:
    """Expose a source's files as the view ``schema.name`` that SQL models read.

    Args:
        path: The source's glob.
        file_format: ``csv`` or ``parquet``.
        partition_column: The source's partition column: with it, the days of a CSV file DuckDB
            cannot read are found, and the file is set aside instead of failing the view.

    Returns:
        The CSV files set aside, with DuckDB's message and their days (none for Parquet).

    Raises:
        SqlModelError: No file matches, or the files cannot be read for a reason no single file explains.
    """
    reader = "read_parquet" if file_format == "parquet" else "read_csv"
    files = sorted(glob.glob(str(path), recursive=True))
    if not files:
        raise SqlModelError(NO_SOURCE_FILES.format(path=path), context={"source": name})
    view = qualified(schema, name)
    key = (partition_column or "", _stat(files))
    unreadable: list[UnreadableFile] = []
    if key in _CHECKED:
        unreadable = list(_CHECKED[key])
    readable = [f for f in files if f not in {u.path for u in unreadable}]
    try:
        _define(conn, view, reader, readable)
        while key not in _CHECKED and file_format == "csv" and partition_column is not None:
            try:
                conn.execute(f"SELECT bit_xor(hash(r)) FROM {view} r").fetchall()
                break
            except duckdb.Error as exc:
                named = _FILE_IN_ERROR.search(str(exc))
                bad = named and os.path.normpath(named.group(1))
                culprit = next((f for f in readable if os.path.normpath(f) == bad), None)
                if culprit is None or len(readable) == 1:
                    raise
                unreadable.append(
                    UnreadableFile(
                        culprit, _short(exc), _partitions_of(conn, culprit, partition_column)
                    )
                )
                readable.remove(culprit)
                _define(conn, view, reader, readable)
    except duckdb.Error as exc:
        raise SqlModelError(
            SOURCE_ERROR.format(name=name, path=path, message=exc), context={"source": name}
        ) from exc
    if file_format == "csv" and partition_column is not None:
        _CHECKED[key] = tuple(unreadable)
    return tuple(unreadable)
