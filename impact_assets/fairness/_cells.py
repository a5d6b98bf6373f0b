"""Per-group confusion cells of one partition, aggregated in DuckDB.

One ``GROUP BY`` over every sensitive feature, the label and the prediction gives the finest cells:
one row per combination of groups, actual outcome and decision, with its row count. Every metric
of every feature set (each feature, each intersection, overall) is a function of these counts, so
Python never sees the row-level data.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from impact_assets.errors import DataContractError
from impact_assets.spec import Bindings
from impact_assets.sql import ident

__all__ = ["MISSING_GROUP", "GroupCells", "group_cells"]

#: Group key given to NULL values of a sensitive feature when the spec keeps them as a group.
MISSING_GROUP = "(missing)"

EMPTY_PARTITION = "partition {partition} of {table} has no rows"
NULL_VALUES = "{count} rows of partition {partition} have NULL in {column!r}"
NOT_BINARY = "{column!r} must be binary for a binary classification, but partition {partition} has {count} distinct values (first ones: {values})"
POSITIVE_MISSING = "{column!r} takes the values {values} in partition {partition}, none of which is the positive label {positive!r}"
NULL_SENSITIVE = "{count} rows of partition {partition} have NULL in sensitive feature {column!r}, and the spec rejects missing groups (bindings.missing_groups: reject)"


@dataclass(frozen=True)
class GroupCells:
    """Counts by (sensitive features..., y_true, y_pred) for one partition."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    rows: int


def _positive_tokens(positive_label: int | str) -> list[str]:
    tokens = {str(positive_label)}
    if str(positive_label) in {"1", "True", "true"}:
        tokens |= {"1", "true"}
    return sorted(tokens)


def _check_binary(conn: duckdb.DuckDBPyConnection, relation: str, where: str, params: list, column: str, partition: str, positive: int | str) -> None:
    nulls, distinct, values = conn.execute(
        f"SELECT count(*) FILTER (WHERE {ident(column)} IS NULL), count(DISTINCT {ident(column)}), "
        f"list(DISTINCT CAST({ident(column)} AS VARCHAR) ORDER BY CAST({ident(column)} AS VARCHAR))[1:5] "
        f"FROM {relation} {where}",
        params,
    ).fetchall()[0]
    context = {"table": relation, "column": column, "partition": partition}
    if nulls:
        raise DataContractError(NULL_VALUES.format(count=nulls, partition=partition, column=column), context=context)
    if distinct > 2:
        raise DataContractError(NOT_BINARY.format(column=column, partition=partition, count=distinct, values=values), context=context)
    if distinct == 2 and not set(values) & set(_positive_tokens(positive)):
        raise DataContractError(POSITIVE_MISSING.format(column=column, values=values, partition=partition, positive=positive), context=context)


def group_cells(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    bindings: Bindings,
    *,
    partition_key: str,
    positive_label: int | str = 1,
) -> GroupCells:
    """Aggregate one partition of the scored table to per-group confusion cells.

    Args:
        conn: Open DuckDB connection.
        relation: Quoted ``schema.table`` of the scored rows.
        bindings: Which columns are the label, decision and sensitive features.
        partition_key: The day, ``YYYY-MM-DD``.
        positive_label: Value of the label (and decision) that counts as positive.

    Returns:
        Cells with columns ``<feature>...``, ``y_true``, ``y_pred``, ``n``.

    Raises:
        DataContractError: Empty partition, NULL or non-binary label/decision, NULL sensitive
            values when the spec rejects them.
    """
    pcol = ident(bindings.partition_column)
    where = f"WHERE CAST({pcol} AS DATE) = CAST(? AS DATE)"
    params = [partition_key]
    rows = conn.execute(f"SELECT count(*) FROM {relation} {where}", params).fetchall()[0][0]
    if rows == 0:
        raise DataContractError(EMPTY_PARTITION.format(partition=partition_key, table=relation), context={"table": relation, "partition": partition_key})
    for column in (bindings.label, bindings.prediction):
        _check_binary(conn, relation, where, params, column, partition_key, positive_label)
    features = tuple(f.name for f in bindings.sensitive_features)
    if bindings.missing_groups == "reject":
        for feature in features:
            nulls = conn.execute(f"SELECT count(*) FROM {relation} {where} AND {ident(feature)} IS NULL", params).fetchall()[0][0]
            if nulls:
                raise DataContractError(
                    NULL_SENSITIVE.format(count=nulls, partition=partition_key, column=feature),
                    context={"table": relation, "column": feature, "partition": partition_key},
                )
    tokens = _positive_tokens(positive_label)
    placeholders = ", ".join("?" for _ in tokens)
    keys = ", ".join(f"COALESCE(CAST({ident(f)} AS VARCHAR), ?) AS {ident(f)}" for f in features)
    frame = conn.execute(
        f"SELECT {keys}, "
        f"CAST(CAST({ident(bindings.label)} AS VARCHAR) IN ({placeholders}) AS INTEGER) AS y_true, "
        f"CAST(CAST({ident(bindings.prediction)} AS VARCHAR) IN ({placeholders}) AS INTEGER) AS y_pred, "
        f"count(*) AS n FROM {relation} {where} GROUP BY ALL ORDER BY ALL",
        [*([MISSING_GROUP] * len(features)), *tokens, *tokens, *params],
    ).df()
    frame["n"] = frame["n"].astype("int64")
    return GroupCells(frame=frame, features=features, rows=int(rows))
