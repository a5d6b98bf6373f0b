"""The demo model: local registry, training and scoring."""

from impact_assets.modeling._linear_sql import linear_terms_sql
from impact_assets.modeling._mlflow import MlflowModelRegistry
from impact_assets.modeling._registry import LocalModelRegistry, ModelVersion
from impact_assets.modeling._score import (
    PREDICTIONS_TABLE,
    SCORED_ID,
    SCORED_SCORE,
    ScoredPartition,
    predict_scores,
    predictions_columns,
    score_partition,
    scorecard_scores_sql,
    spark_scores,
)
from impact_assets.modeling._train import fingerprint_frame, train_classifier

__all__ = [
    "PREDICTIONS_TABLE",
    "SCORED_ID",
    "SCORED_SCORE",
    "LocalModelRegistry",
    "MlflowModelRegistry",
    "ModelVersion",
    "ScoredPartition",
    "fingerprint_frame",
    "linear_terms_sql",
    "predict_scores",
    "predictions_columns",
    "score_partition",
    "scorecard_scores_sql",
    "spark_scores",
    "train_classifier",
]
