"""Scoring one partition with a registered model into the assessment's ``predictions`` table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from impact_assets.errors import DataContractError, ModelRegistryError
from impact_assets.sql import ident, qualified, table_columns

__all__ = ["PREDICTIONS_TABLE", "ScoredPartition", "predictions_columns", "score_partition"]

#: Name of the table (and asset) holding the scores of the registry's model.
PREDICTIONS_TABLE = "predictions"

MISSING_FEATURES = "model version {version} needs features {missing} that {table} does not have (it has: {available})"
NO_FEATURES = "model version {version} records no features in its metadata"
SCORING_FAILED = "model version {version} failed to score partition {partition}: {message}"
EMPTY_PARTITION = "partition {partition} of {table} has no rows to score"


@dataclass(frozen=True)
class ScoredPartition:
    rows: int
    model_version: str
    mean_score: float
    approval_rate: float
    undeclared_features: tuple[str, ...] = ()
    unused_features: tuple[str, ...] = ()


def predictions_columns(id_column: str, id_type: str, partition_column: str) -> dict[str, str]:
    """The explicit schema of the predictions table."""
    return {
        id_column: id_type,
        partition_column: "DATE",
        "model_version": "VARCHAR",
        "score": "DOUBLE",
        "decision": "INTEGER",
        "scored_at": "TIMESTAMPTZ",
    }


def score_partition(
    conn: duckdb.DuckDBPyConnection,
    model: Any,
    *,
    model_version: str,
    trained_features: Sequence[str],
    schema: str,
    features_table: str,
    id_column: str,
    features: Sequence[str],
    partition_column: str,
    partition_key: str,
    decision_threshold: float,
) -> ScoredPartition:
    """Score the rows of one day and replace that day in ``<schema>.predictions`` (one transaction).

    Raises:
        ModelRegistryError: The model's features do not match the spec or the table, or scoring fails.
        DataContractError: The partition is empty.
    """
    source = qualified(schema, features_table)
    if not trained_features:
        raise ModelRegistryError(NO_FEATURES.format(version=model_version))
    # The model is scored on the features it was trained on; differences from the spec are reported.
    used = list(trained_features)
    available = dict(table_columns(conn, schema, features_table))
    missing = [c for c in [id_column, partition_column, *used] if c not in available]
    if missing:
        raise ModelRegistryError(
            MISSING_FEATURES.format(
                version=model_version,
                missing=missing,
                table=f"{schema}.{features_table}",
                available=list(available),
            ),
            context={"table": f"{schema}.{features_table}"},
        )
    selected = ", ".join(ident(c) for c in [id_column, *used])
    frame = conn.execute(
        f"SELECT {selected} FROM {source} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)",
        [partition_key],
    ).df()
    if frame.empty:
        raise DataContractError(
            EMPTY_PARTITION.format(partition=partition_key, table=f"{schema}.{features_table}"),
            context={"partition": partition_key},
        )
    try:
        scores = np.asarray(model.predict_proba(frame[used])[:, 1], dtype="float64")
    except (
        Exception
    ) as exc:  # a model failing on this data is reported with its version and the partition
        raise ModelRegistryError(
            SCORING_FAILED.format(
                version=model_version,
                partition=partition_key,
                message=f"{type(exc).__name__}: {exc}",
            ),
            context={"version": model_version, "partition": partition_key},
        ) from exc
    result = pd.DataFrame(
        {
            id_column: frame[id_column],
            partition_column: pd.Timestamp(partition_key).date(),
            "model_version": model_version,
            "score": scores,
            "decision": (scores >= decision_threshold).astype("int32"),
            "scored_at": dt.datetime.now(dt.UTC),
        }
    )
    target = qualified(schema, PREDICTIONS_TABLE)
    columns = predictions_columns(id_column, available[id_column], partition_column)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(f'{ident(c)} {t}' for c, t in columns.items())})"
        )
        conn.execute(
            f"DELETE FROM {target} WHERE {ident(partition_column)} = CAST(? AS DATE)",
            [partition_key],
        )
        conn.register("_scored", result)
        conn.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _scored")
        conn.unregister("_scored")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ScoredPartition(
        rows=len(result),
        model_version=model_version,
        mean_score=float(scores.mean()),
        approval_rate=float(result["decision"].mean()),
        undeclared_features=tuple(c for c in used if c not in features),
        unused_features=tuple(c for c in features if c not in used),
    )
