"""Rows between DuckDB and pandas, without holding more of them than needed.

The helpers go through DuckDB's own pandas conversion (numpy buffers for numbers, categoricals for
``ENUM``) and its own Parquet writer, so no Arrow library is needed at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from impact_assets.sql._quote import ident, literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CATEGORICAL_LIMIT", "compact_frame", "stream_frames", "write_parquet"]

#: A text column with at most this many distinct values comes to pandas as a categorical.
CATEGORICAL_LIMIT = 65_536
#: Rows in one DuckDB vector, the unit in which results are fetched.
_VECTOR = 2048


def stream_frames(
    conn: duckdb.DuckDBPyConnection, query: str, params: Sequence[object], rows: int
) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` as pandas frames of about ``rows`` rows each, one at a time.

    Runs on a cursor of its own, so ``conn`` stays free for writes meanwhile. No frame is yielded for
    an empty result.
    """
    cursor = conn.cursor()
    try:
        cursor.execute(query, list(params))
        vectors = max(1, rows // _VECTOR)
        while len(frame := cursor.fetch_df_chunk(vectors)):
            yield frame
    finally:
        cursor.close()


def compact_frame(
    conn: duckdb.DuckDBPyConnection, query: str, params: Sequence[object]
) -> pd.DataFrame:
    """Rows of ``query`` as a compact pandas frame: text columns of few distinct values as categoricals.

    The rows are first kept by DuckDB (compact, and spilled to disk past its memory limit); each text
    column of at most :data:`CATEGORICAL_LIMIT` distinct values is then cast to an ``ENUM`` of them,
    which DuckDB hands to pandas as integer codes. Ten million rows of three such columns so take a
    fraction of the memory and time of Python string objects. Other text columns stay text.
    """
    rows = "_impact_compact_rows"
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {ident(rows)} AS {query}", list(params))
    try:
        described = conn.execute(f"DESCRIBE {ident(rows)}").fetchall()
        names = [name for name, *_ in described]
        text = [name for name, kind, *_ in described if kind == "VARCHAR"]
        casts: dict[str, str] = {}
        if text:
            counts = conn.execute(
                f"SELECT {', '.join(f'approx_count_distinct({ident(c)})' for c in text)} FROM {ident(rows)}"
            ).fetchall()[0]
            few = [c for c, n in zip(text, counts, strict=True) if n <= CATEGORICAL_LIMIT]
            if few:
                values = conn.execute(
                    f"SELECT {', '.join(f'list(DISTINCT {ident(c)} ORDER BY {ident(c)}) FILTER ({ident(c)} IS NOT NULL)' for c in few)} FROM {ident(rows)}"
                ).fetchall()[0]
                for column, found in zip(few, values, strict=True):
                    # the count was approximate; a NUL cannot be written in an ENUM's members
                    if (
                        found
                        and len(found) <= CATEGORICAL_LIMIT
                        and not any("\x00" in v for v in found)
                    ):
                        members = ", ".join(literal(v) for v in found)
                        casts[column] = (
                            f"CAST({ident(column)} AS ENUM ({members})) AS {ident(column)}"
                        )
        selected = ", ".join(casts.get(c, ident(c)) for c in names)
        frame = conn.execute(f"SELECT {selected} FROM {ident(rows)}").df()
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {ident(rows)}")
    for column in casts:  # an ENUM comes ordered; the text it stands for has no order
        frame[column] = frame[column].cat.as_unordered()
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a pandas frame to one Parquet file, by DuckDB."""
    with duckdb.connect() as conn:
        conn.register("_frame", frame)
        conn.execute(f"COPY _frame TO {literal(str(path))} (FORMAT parquet)")
