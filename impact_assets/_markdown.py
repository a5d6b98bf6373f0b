"""Markdown tables of result rows, for asset metadata and the impact report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["markdown_cell", "markdown_table"]


def human_number(value: float) -> str:
    """A number for people: 3 significant digits (``0.834``, ``12.3``, ``0.0000663``), whole numbers
    with thousands separators from 1,000 on (``123,456``); never scientific notation."""
    if abs(value) >= 999.5:
        return f"{value:,.0f}"
    return np.format_float_positional(value, precision=3, fractional=False, trim="-")


def with_interval(value: object, low: object = None, high: object = None) -> str:
    """A value with its interval for people: ``0.834 [0.732, 0.924]``, missing as an em dash."""
    if value is None or pd.isna(value):
        return "—"
    shown = human_number(float(value))
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return shown
    return f"{shown} [{human_number(float(low))}, {human_number(float(high))}]"


def markdown_cell(value: object) -> str:
    """A value as a table cell: missing as an em dash, floats as :func:`human_number`."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return human_number(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
