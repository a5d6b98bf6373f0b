"""Per-group cells of one partition, aggregated in DuckDB.

One ``GROUP BY`` over every sensitive feature's own values, the label, the decision and a fine score
bin gives the finest cells: one row per combination, with its row count and the sum and sum of squares
of the scores in it. The values become group keys on those few rows (cells of values outside a
feature's declared ones are added up into its ``(other)`` group), not on every row. Every decision
metric of every feature set (each feature, each intersection, overall), the Brier score and the
expected calibration error are functions of these cells, so Python never sees row-level data. The
exact AUC needs the scores themselves and is computed by :func:`score_auc`.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from impact_assets.errors import DataContractError
from impact_assets.spec import Bindings, SensitiveFeature
from impact_assets.sql import ident, literal

__all__ = [
    "MISSING_GROUP",
    "OTHER_GROUP",
    "SCORE_BINS",
    "GroupCells",
    "group_cells",
    "group_key",
    "group_key_sql",
]


def group_key_sql(feature: SensitiveFeature, *, qualifier: str = "") -> str:
    """SQL for the group key of ``feature``: its value as text, ``(missing)`` for NULL, and
    ``(other)`` for a value outside its declared ``values``."""
    column = f"CAST({qualifier}{ident(feature.name)} AS VARCHAR)"
    if feature.values is None:
        return f"COALESCE({column}, {literal(MISSING_GROUP)})"
    declared = ", ".join(literal(v) for v in feature.values)
    return (
        f"CASE WHEN {column} IS NULL THEN {literal(MISSING_GROUP)} "
        f"WHEN {column} IN ({declared}) THEN {column} ELSE {literal(OTHER_GROUP)} END"
    )


def group_key(feature: SensitiveFeature, text: object) -> str:
    """The group key of a value of ``feature`` given as text (``CAST(... AS VARCHAR)``), as
    :func:`group_key_sql` gives it in SQL; anything but a string (None, NaN: a NULL) is missing."""
    if not isinstance(text, str):
        return MISSING_GROUP
    return text if feature.values is None or text in feature.values else OTHER_GROUP


#: Group key given to NULL values of a sensitive feature when the spec keeps them as a group.
MISSING_GROUP = "(missing)"
#: Group key of every value outside a sensitive feature's declared ``values``: such values (typos,
#: free text) are never written out, only counted; the feature's ``values_are_in_set`` check flags them.
OTHER_GROUP = "(other)"
#: Equal-width score bins of the cells; calibration bins are unions of these.
SCORE_BINS = 100

EMPTY_PARTITION = "partition {partition} of {table} has no rows"
NULL_VALUES = "{count} rows of partition {partition} have NULL in {column!r}"
NOT_BINARY = "{column!r} must be binary for a binary classification, but partition {partition} has {count} distinct values (first ones: {values})"
POSITIVE_MISSING = "{column!r} takes the values {values} in partition {partition}, none of which is the positive label {positive!r}"
NULL_SENSITIVE = "{count} rows of partition {partition} have NULL in sensitive feature {column!r}, and the spec rejects missing groups (bindings.missing_groups: reject)"
SCORE_OUT_OF_RANGE = "{count} rows of partition {partition} have a score outside [0, 1] in {column!r} (min {low}, max {high})"


@dataclass(frozen=True)
class GroupCells:
    """Counts by (sensitive features..., y_true, y_pred, score_bin) for one partition.

    ``score_bin`` is ``-1`` and the score sums are 0 when no score column is bound.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    rows: int
    has_score: bool


def _positive_tokens(positive_label: int | str) -> list[str]:
    tokens = {str(positive_label)}
    if str(positive_label) in {"1", "True", "true"}:
        tokens |= {"1", "true"}
    return sorted(tokens)


def _check_binary(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    where: str,
    params: list,
    column: str,
    partition: str,
    positive: int | str,
    counts: tuple[int, int, int],
) -> None:
    """Refuse a label or decision that has NULLs, more than two values or two without the positive
    one; ``counts`` are its NULLs, distinct values and positive rows in the partition."""
    nulls, distinct, positives = counts
    context = {"table": relation, "column": column, "partition": partition}
    if nulls:
        raise DataContractError(
            NULL_VALUES.format(count=nulls, partition=partition, column=column), context=context
        )
    if distinct < 2 or (distinct == 2 and positives):
        return
    # the first values, for the message only
    values = [
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT CAST({ident(column)} AS VARCHAR) AS v FROM {relation} {where} "
            f"AND {ident(column)} IS NOT NULL ORDER BY v LIMIT 5",
            params,
        ).fetchall()
    ]
    if distinct > 2:
        raise DataContractError(
            NOT_BINARY.format(column=column, partition=partition, count=distinct, values=values),
            context=context,
        )
    raise DataContractError(
        POSITIVE_MISSING.format(
            column=column, values=values, partition=partition, positive=positive
        ),
        context=context,
    )


def _check_score(
    relation: str, column: str, partition: str, counts: tuple[int, int, float, float]
) -> None:
    """Refuse NULL scores and scores outside [0, 1]; ``counts`` are the NULLs, the rows outside,
    the lowest and the highest score of the partition."""
    nulls, outside, low, high = counts
    context = {"table": relation, "column": column, "partition": partition}
    if nulls:
        raise DataContractError(
            NULL_VALUES.format(count=nulls, partition=partition, column=column), context=context
        )
    if outside:
        raise DataContractError(
            SCORE_OUT_OF_RANGE.format(
                count=outside, partition=partition, column=column, low=low, high=high
            ),
            context=context,
        )


def _where(bindings: Bindings) -> str:
    return f"WHERE CAST({ident(bindings.partition_column)} AS DATE) = CAST(? AS DATE)"


def _label_expr(column: str, tokens: list[str]) -> str:
    return (
        f"CAST(CAST({ident(column)} AS VARCHAR) IN ({', '.join('?' for _ in tokens)}) AS INTEGER)"
    )


def group_cells(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    bindings: Bindings,
    *,
    partition_key: str,
    positive_label: int | str = 1,
) -> GroupCells:
    """Aggregate one partition of the scored table to per-group cells.

    Args:
        conn: Open DuckDB connection.
        relation: Quoted ``schema.table`` of the scored rows.
        bindings: Which columns are the label, decision, score and sensitive features.
        partition_key: The day, ``YYYY-MM-DD``.
        positive_label: Value of the label (and decision) that counts as positive.

    Returns:
        Cells with columns ``<feature>...``, ``y_true``, ``y_pred``, ``score_bin``, ``n``,
        ``score_sum``, ``score_sq``.

    Raises:
        DataContractError: Empty partition, NULL or non-binary label/decision, NULL or out-of-range
            scores, NULL sensitive values when the spec rejects them.
    """
    where, params = _where(bindings), [partition_key]
    tokens = _positive_tokens(positive_label)
    features = tuple(f.name for f in bindings.sensitive_features)
    rejected = features if bindings.missing_groups == "reject" else ()
    # what the checks need, in one scan: rows, then per binary column its NULLs, distinct values and
    # positives, the score's NULLs, values outside [0, 1], minimum and maximum, NULL sensitive values
    marks = ", ".join("?" for _ in tokens)
    measures = ["count(*)"]
    for column in (ident(bindings.label), ident(bindings.prediction)):
        measures += [
            f"count(*) FILTER (WHERE {column} IS NULL)",
            f"count(DISTINCT {column})",
            f"count(*) FILTER (WHERE CAST({column} AS VARCHAR) IN ({marks}))",
        ]
    if bindings.score is not None:
        score = ident(bindings.score)
        measures += [
            f"count(*) FILTER (WHERE {score} IS NULL)",
            f"count(*) FILTER (WHERE {score} < 0 OR {score} > 1 OR isnan({score}))",
            f"min({score})",
            f"max({score})",
        ]
    measures += [f"count(*) FILTER (WHERE {ident(f)} IS NULL)" for f in rejected]
    profile = list(
        conn.execute(
            f"SELECT {', '.join(measures)} FROM {relation} {where}", [*tokens, *tokens, *params]
        ).fetchall()[0]
    )
    rows = profile.pop(0)
    if rows == 0:
        raise DataContractError(
            EMPTY_PARTITION.format(partition=partition_key, table=relation),
            context={"table": relation, "partition": partition_key},
        )
    for column in (bindings.label, bindings.prediction):
        counts = (profile.pop(0), profile.pop(0), profile.pop(0))
        _check_binary(conn, relation, where, params, column, partition_key, positive_label, counts)
    if bindings.score is not None:
        counts = (profile.pop(0), profile.pop(0), profile.pop(0), profile.pop(0))
        _check_score(relation, bindings.score, partition_key, counts)
    for feature, nulls in zip(rejected, profile, strict=True):
        if nulls:
            raise DataContractError(
                NULL_SENSITIVE.format(count=nulls, partition=partition_key, column=feature),
                context={"table": relation, "column": feature, "partition": partition_key},
            )
    # the cells by the features' own values (no group key computed per row), then by group key:
    # values outside the declared ones share the group "(other)", so their cells are added up
    grouped = list(
        dict.fromkeys(ident(c) for c in [*features, bindings.label, bindings.prediction])
    )
    if bindings.score is not None:
        score = f"CAST({ident(bindings.score)} AS DOUBLE)"
        rows_sql = f"{', '.join(grouped)}, least(CAST(floor({score} * {SCORE_BINS}) AS INTEGER), {SCORE_BINS - 1}) AS _bin, {score} AS _score"
        sums = "sum(_score) AS score_sum, sum(_score * _score) AS score_sq"
    else:
        rows_sql = f"{', '.join(grouped)}, -1 AS _bin"
        sums = "0.0 AS score_sum, 0.0 AS score_sq"
    selected = [
        *(f"CAST({ident(f)} AS VARCHAR) AS {ident('_v_' + f)}" for f in features),
        f"{_label_expr(bindings.label, tokens)} AS y_true",
        f"{_label_expr(bindings.prediction, tokens)} AS y_pred",
        "_bin AS score_bin",
        "count(*) AS n",
        sums,
    ]
    frame = conn.execute(
        f"SELECT {', '.join(selected)} FROM (SELECT {rows_sql} FROM {relation} {where}) AS _rows "
        f"GROUP BY {', '.join([*grouped, '_bin'])}",
        [*tokens, *tokens, *params],
    ).df()
    for feature in bindings.sensitive_features:
        frame[feature.name] = [group_key(feature, v) for v in frame.pop("_v_" + feature.name)]
    keys = [*features, "y_true", "y_pred", "score_bin"]
    frame = (
        frame.groupby(keys, as_index=False, sort=True)[["n", "score_sum", "score_sq"]]
        .sum()
        .astype({"n": "int64", "score_bin": "int64", "score_sum": "float64", "score_sq": "float64"})
    )
    return GroupCells(
        frame=frame, features=features, rows=int(rows), has_score=bindings.score is not None
    )
