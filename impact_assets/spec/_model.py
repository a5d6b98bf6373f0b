"""The model under assessment: its registry (local or MLflow) and how its scores are made."""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from impact_assets.spec._base import ColumnName, Identifier, NonEmptyText, SpecModel

#: Assessment ids that would collide with DuckDB schemas of the package or of DuckDB itself.
CREDENTIALS_IN_URI = (
    "credentials do not belong in the spec: remove the user and password from the URI and set "
    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment"
)


class MlflowRegistrySpec(SpecModel):
    """MLflow's model registry instead of the local folder (needs ``impact-assets[mlflow]``)."""

    model_name: NonEmptyText
    """Registered model name in MLflow."""
    tracking_uri: str | None = Field(
        default=None,
        description="Default: MLflow's own MLFLOW_TRACKING_URI. Credentials come from MLflow's environment variables.",
    )
    experiment: NonEmptyText = Field(
        default="impact-assets", description="Experiment that holds the training runs."
    )

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials(cls, uri: str | None) -> str | None:
        if uri is not None and urllib.parse.urlsplit(uri).password is not None:
            raise ValueError(CREDENTIALS_IN_URI)
        return uri

    artifact_location: str | None = Field(
        default=None,
        description="Where a new experiment keeps run artifacts (`{state_dir}` expands); default: the "
        "tracking server's artifact root, or `{state_dir}/mlflow-artifacts` for a database store (sqlite, PostgreSQL, MySQL, SQL Server).",
    )


class RegistryScoring(SpecModel):
    """Score partitions with the newest usable version in the model registry."""

    mlflow: MlflowRegistrySpec | None = None
    """Use MLflow's model registry instead of the local folder."""

    path: str | None = Field(
        default=None, description="Registry folder; default `{state_dir}/models/<assessment id>`."
    )
    features_table: Identifier = Field(description="SQL model holding one row per case to score.")
    id_column: ColumnName
    """Column identifying a case in the features table."""
    features: tuple[ColumnName, ...] = Field(min_length=1)
    """Columns the model is trained on and scores with."""
    label: ColumnName = Field(
        description="Outcome column the demo model is trained on (1 = positive label)."
    )
    decision_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """A score at or above it is a positive decision."""


class ModelSpec(SpecModel):
    """The model under assessment."""

    name: Identifier
    """Name of the model (for people; versions come from the registry)."""
    task: Literal["binary_classification"] = "binary_classification"
    """The task the model performs."""
    positive_label: int | str = 1
    """Label and decision value that counts as positive (the favourable outcome)."""
    registry: RegistryScoring | None = Field(
        default=None,
        description="Score with the project's model registry; omit when the scored table already holds decisions and scores made elsewhere.",
    )
