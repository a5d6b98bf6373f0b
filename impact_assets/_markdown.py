"""Markdown tables of result rows, for asset metadata and the impact report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

__all__ = ["markdown_cell", "markdown_table"]


def markdown_cell(value: object) -> str:
    """A value as a table cell: missing as an em dash, floats to 4 significant digits."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
