"""Scoring a partition with the registry's latest model version, and training a new version."""

from __future__ import annotations

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.errors import ModelRegistryError
from impact_assets.modeling import (
    ModelVersion,
    ScoredPartition,
    fingerprint_frame,
    score_partition,
    train_classifier,
)
from impact_assets.oversight import os_user
from impact_assets.pipeline._engine import row_engine
from impact_assets.sql import ensure_schema, literal, qualified


def score(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> ScoredPartition:
    """Score a partition with the registry's latest model version."""
    registry = assessment.registry
    scoring = assessment.spec.model.registry
    if registry is None or scoring is None:
        raise ModelRegistryError(f"assessment {assessment.id!r} declares no model registry")
    version = registry.latest(usable=True)
    model, entry = registry.load(version.version)
    return score_partition(
        row_engine(conn, assessment),
        model,
        model_version=entry.version,
        trained_features=entry.metadata.get("features", []),
        schema=assessment.schema,
        features_table=scoring.features_table,
        id_column=scoring.id_column,
        features=scoring.features,
        partition_column=assessment.spec.bindings.partition_column,
        partition_key=partition_key,
        decision_threshold=scoring.decision_threshold,
    )


def train_model(
    assessment: Assessment,
    training_rows: pd.DataFrame,
    *,
    extra_features: tuple[str, ...] = (),
    note: str = "",
    proposed_by: str | None = None,
) -> ModelVersion:
    """Train on raw training rows passed through the assessment's own SQL, and register a version.

    The raw rows play the role of the sources; the SQL models up to the features table are run on them
    in an in-memory DuckDB, so training and scoring see features computed by the same SQL.
    ``extra_features`` (columns of the features table beyond the spec's) make a model that uses
    undeclared features, as the demo's deliberately unfair retrain does. ``proposed_by`` (default:
    the OS user) is recorded as the version's proposer, whom a four-eyes sign-off policy keeps from
    signing it off.
    """
    scoring = assessment.spec.model.registry
    registry = assessment.registry
    if scoring is None or registry is None:
        raise ModelRegistryError(
            f"assessment {assessment.id!r} declares no model registry to train into"
        )
    needed: list[str] = []

    def visit(name: str) -> None:
        for upstream in assessment.sql.upstream_models(name):
            visit(upstream)
        if name not in needed:
            needed.append(name)

    visit(scoring.features_table)
    with duckdb.connect() as conn:
        ensure_schema(conn, assessment.schema)
        for name in assessment.spec.sources:
            conn.register("_training_rows", training_rows)
            conn.execute(
                f"CREATE TABLE {qualified(assessment.schema, name)} AS SELECT * FROM _training_rows"
            )
            conn.unregister("_training_rows")
        conn.execute(f"SET search_path = {literal(assessment.schema)}")
        for name in needed:
            model = assessment.sql.models[name]
            conn.execute(
                f"CREATE TABLE {qualified(assessment.schema, name)} AS {model.sql.strip().rstrip(';')}"
            )
        frame = conn.execute(
            f"SELECT * FROM {qualified(assessment.schema, scoring.features_table)}"
        ).df()
    pipeline, metadata = train_classifier(
        frame, [*scoring.features, *extra_features], scoring.label
    )
    metadata["assessment_id"] = assessment.id
    metadata["proposed_by"] = proposed_by or os_user() or "unknown"
    if note:
        metadata["note"] = note
    metadata["raw_training_fingerprint"] = fingerprint_frame(training_rows)
    reference = frame.assign(
        **{
            assessment.spec.bindings.score or "score": pipeline.predict_proba(
                frame[metadata["features"]]
            )[:, 1]
        }
    )
    return registry.register(pipeline, metadata, reference)
