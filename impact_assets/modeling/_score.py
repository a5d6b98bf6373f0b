"""Scoring one partition with a registered model into the assessment's ``predictions`` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from impact_assets.engine import SparkEngine
from impact_assets.errors import DataContractError, ModelRegistryError
from impact_assets.modeling._linear_sql import linear_logit_sql
from impact_assets.sql import ident, qualified, stream_frames, table_columns

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "PREDICTIONS_TABLE",
    "SCORED_ID",
    "SCORED_SCORE",
    "ScoredPartition",
    "predict_scores",
    "predictions_columns",
    "score_partition",
    "scorecard_scores_sql",
    "spark_scores",
]

#: Name of the table (and asset) holding the scores of the registry's model.
PREDICTIONS_TABLE = "predictions"

MISSING_FEATURES = "model version {version} needs features {missing} that {table} does not have (it has: {available})"
NO_FEATURES = "model version {version} records no features in its metadata"
SCORING_FAILED = "model version {version} failed to score partition {partition}: {message}"
EMPTY_PARTITION = "partition {partition} of {table} has no rows to score"
NULL_FEATURES = "{count} rows have NULL in a numeric feature the model needs"


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


#: Column names of :func:`predict_scores`' result.
SCORED_ID, SCORED_SCORE = "_id", "_score"


def scorecard_scores_sql(
    model: Any, features: Sequence[str], query: str, id_column: str
) -> str | None:
    """``_id`` and ``_score`` of each row of ``query`` as one SQL query when the model is the
    scorecard of :func:`train_classifier` (``None`` for any other model): the logistic of its
    log-odds, without overflow, so the engine writes the scores where they go."""
    logit = linear_logit_sql(model, features)
    if logit is None:
        return None
    return (
        f"SELECT {SCORED_ID}, CASE WHEN _z >= 0 THEN 1 / (1 + exp(-_z)) ELSE exp(_z) / (1 + exp(_z)) END AS {SCORED_SCORE} "
        f"FROM (SELECT {ident(id_column)} AS {SCORED_ID}, {logit} AS _z FROM ({query}) AS _rows) AS _logits"
    )


def spark_scores(
    engine: SparkEngine,
    query: str,
    params: Sequence[object],
    model: Any,
    features: Sequence[str],
    *,
    id_column: str,
) -> Any:
    """:func:`predict_scores` on Spark: a lazy DataFrame of ``_id`` and ``_score``.

    The scorecard is one SQL expression; any other model is scored by the executors, batch by batch
    (``mapInPandas``), so no row comes to this process.
    """
    import numpy as np

    in_sql = scorecard_scores_sql(model, features, query, id_column)
    if in_sql is not None:
        return engine.frame(in_sql, params)
    rows = engine.frame(query, params)
    id_type = rows.schema[id_column].dataType.simpleString()
    wanted = list(features)

    def predict(batches: Any) -> Any:
        import pandas as pd

        for batch in batches:
            yield pd.DataFrame(
                {
                    SCORED_ID: batch[id_column],
                    SCORED_SCORE: np.asarray(
                        model.predict_proba(batch[wanted])[:, 1], dtype="float64"
                    ),
                }
            )

    return rows.mapInPandas(predict, schema=f"{SCORED_ID} {id_type}, {SCORED_SCORE} double")


def predict_scores(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: Sequence[object],
    model: Any,
    features: Sequence[str],
    *,
    id_column: str,
    batch_rows: int = 500_000,
) -> pd.DataFrame:
    """The model's positive-class probability for every row of ``query``.

    The scorecard pipeline of :func:`train_classifier` is scored by DuckDB as one SQL expression
    (:func:`scorecard_scores_sql`); any other model batch by batch in Python, with one batch of feature
    rows in pandas at a time (about 0.3 GB for 500,000 rows of a dozen features).

    Returns:
        Columns ``_id`` (``id_column``'s values) and ``_score``.
    """
    import numpy as np
    import pandas as pd

    in_sql = scorecard_scores_sql(model, features, query, id_column)
    if in_sql is not None:  # the scorecard, scored by DuckDB
        cursor = conn.cursor()  # a second connection: the caller's stays free to write meanwhile
        try:
            scored = cursor.execute(in_sql, list(params)).df()
        finally:
            cursor.close()
        missing = int(scored[SCORED_SCORE].isna().sum())
        if missing:  # as scikit-learn refuses NaN input
            raise ValueError(NULL_FEATURES.format(count=missing))
        return scored
    ids: list[pd.Series] = []
    scores: list[np.ndarray] = []
    for batch in stream_frames(conn, query, params, batch_rows):
        scores.append(np.asarray(model.predict_proba(batch[list(features)])[:, 1], dtype="float64"))
        ids.append(batch[id_column])
    return pd.DataFrame(
        {
            SCORED_ID: pd.concat(ids, ignore_index=True) if ids else pd.Series([], dtype="int64"),
            SCORED_SCORE: np.concatenate(scores) if scores else np.empty(0, dtype="float64"),
        }
    )


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
    undeclared = tuple(c for c in used if c not in features)
    unused = tuple(c for c in features if c not in used)
    spark = isinstance(conn, SparkEngine)
    available = dict(
        conn.table_columns(features_table) if spark else table_columns(conn, schema, features_table)
    )
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
    selected = ", ".join(ident(c) for c in dict.fromkeys([id_column, *used]))
    query = f"SELECT {selected} FROM {source} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)"
    try:
        if spark:
            return _score_on_spark(
                conn,
                query,
                model,
                used,
                model_version=model_version,
                features_table=features_table,
                id_column=id_column,
                partition_column=partition_column,
                partition_key=partition_key,
                decision_threshold=decision_threshold,
                unused=unused,
                undeclared=undeclared,
            )
        in_sql = scorecard_scores_sql(model, used, query, id_column)
        scored = (
            None
            if in_sql is not None
            else predict_scores(conn, query, [partition_key], model, used, id_column=id_column)
        )
    except (DataContractError, ModelRegistryError):
        raise
    except (
        Exception
    ) as exc:  # a model failing on this data is reported with its version and the partition
        raise _scoring_failed(model_version, partition_key, exc) from exc
    target = qualified(schema, PREDICTIONS_TABLE)
    columns = predictions_columns(id_column, available[id_column], partition_column)
    day = f"{ident(partition_column)} = CAST(? AS DATE)"
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(f'{ident(c)} {t}' for c, t in columns.items())})"
        )
        conn.execute(f"DELETE FROM {target} WHERE {day}", [partition_key])
        if scored is not None:
            conn.register("_scored", scored)
        insert = (
            f"INSERT INTO {target} ({', '.join(ident(c) for c in columns)}) "
            f"SELECT {SCORED_ID}, CAST(? AS DATE), ?, {SCORED_SCORE}, CAST({SCORED_SCORE} >= ? AS INTEGER), now() "
            f"FROM {'_scored' if in_sql is None else f'({in_sql}) AS _scores'}"
        )
        try:
            conn.execute(
                insert,
                [partition_key, model_version, decision_threshold]
                + ([] if in_sql is None else [partition_key]),
            )
        except duckdb.Error as exc:  # the scorecard's SQL failing on this data
            raise _scoring_failed(model_version, partition_key, exc) from exc
        if scored is not None:
            conn.unregister("_scored")
        rows, missing, mean_score, approval_rate = conn.execute(
            f"SELECT count(*), count(*) - count(score), avg(score), avg(CAST(score >= ? AS DOUBLE)) "
            f"FROM {target} WHERE {day}",
            [decision_threshold, partition_key],
        ).fetchall()[0]
        if rows == 0:
            raise DataContractError(
                EMPTY_PARTITION.format(partition=partition_key, table=f"{schema}.{features_table}"),
                context={"partition": partition_key},
            )
        if missing:  # as scikit-learn refuses NaN input
            raise _scoring_failed(
                model_version, partition_key, ValueError(NULL_FEATURES.format(count=missing))
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ScoredPartition(
        rows=int(rows),
        model_version=model_version,
        mean_score=float(mean_score),
        approval_rate=float(approval_rate),
        undeclared_features=undeclared,
        unused_features=unused,
    )


def _scoring_failed(version: str, partition: str, exc: BaseException) -> ModelRegistryError:
    return ModelRegistryError(
        SCORING_FAILED.format(
            version=version, partition=partition, message=f"{type(exc).__name__}: {exc}"
        ),
        context={"version": version, "partition": partition},
    )


def _score_on_spark(
    engine: SparkEngine,
    query: str,
    model: Any,
    used: list[str],
    *,
    model_version: str,
    features_table: str,
    id_column: str,
    partition_column: str,
    partition_key: str,
    decision_threshold: float,
    unused: tuple[str, ...],
    undeclared: tuple[str, ...],
) -> ScoredPartition:
    """Score one day on Spark into the engine's ``predictions`` table; only the summary comes back."""
    from pyspark.sql import functions as F

    scored = spark_scores(
        engine, query, [partition_key], model, used, id_column=id_column
    ).persist()
    try:
        rows, nulls, mean, rate = scored.agg(
            F.count("*"),
            F.count_if(F.col(SCORED_SCORE).isNull()),
            F.avg(SCORED_SCORE),
            F.avg((F.col(SCORED_SCORE) >= F.lit(decision_threshold)).cast("double")),
        ).first()
        if nulls:  # as scikit-learn refuses NaN input
            raise ValueError(NULL_FEATURES.format(count=nulls))
        if rows == 0:
            raise DataContractError(
                EMPTY_PARTITION.format(
                    partition=partition_key, table=f"{engine.schema}.{features_table}"
                ),
                context={"partition": partition_key},
            )
        day = scored.select(
            F.col(SCORED_ID).alias(id_column),
            F.lit(partition_key).cast("date").alias(partition_column),
            F.lit(model_version).alias("model_version"),
            F.col(SCORED_SCORE).alias("score"),
            (F.col(SCORED_SCORE) >= F.lit(decision_threshold)).cast("int").alias("decision"),
            F.current_timestamp().alias("scored_at"),
        )
        engine.write_partition(
            PREDICTIONS_TABLE,
            day,
            whole=None,
            partition_column=partition_column,
            partition_key=partition_key,
        )
    finally:
        scored.unpersist()
    return ScoredPartition(
        rows=int(rows),
        model_version=model_version,
        mean_score=float(mean),
        approval_rate=float(rate),
        undeclared_features=undeclared,
        unused_features=unused,
    )
