"""Where the data lives and what its columns mean: sources, SQL models, bindings and the sensitive
features whose groups are compared.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import (
    OVERALL,
    ColumnName,
    Identifier,
    NonEmptyText,
    SpecModel,
    intersection_name,
)


class SourceSpec(SpecModel):
    """A raw input: files the SQL models read as a view named after the source."""

    path: NonEmptyText = Field(
        description="Glob of the files; `{state_dir}`/`{project_dir}` placeholders, else relative to the project."
    )
    format: Literal["parquet", "csv"] = "parquet"
    """File format."""
    partition_column: ColumnName | None = Field(
        default=None,
        description="Column holding the partition date; defaults to the bindings' partition column.",
    )
    loaded_at_column: ColumnName | None = Field(
        default=None,
        description="When each row was extracted or loaded; with `quality.freshness` it gives the derived check that each partition's batch is fresh.",
    )
    description: str = ""
    """Shown in the UI."""


class SqlSpec(SpecModel):
    """Which ``dbt_like_sql`` files belong to this assessment (globs relative to the SQL folder)."""

    paths: tuple[NonEmptyText, ...] = ("**/*.sql",)
    """Globs of this assessment's `.sql` files under the SQL folder."""


class SensitiveFeature(SpecModel):
    """A column whose groups are compared; ``values`` lists the groups expected in the data."""

    name: ColumnName
    """Column of the scored table."""
    values: tuple[str, ...] | None = None
    """Every value it may take; others fail a quality check."""
    description: str = ""
    """What the feature is and how it was recorded."""


class Bindings(SpecModel):
    """Which table holds the scored rows and what its columns mean."""

    scored_table: Identifier
    """SQL model with one row per decision."""
    id_column: ColumnName
    """Column identifying a decision."""
    partition_column: ColumnName
    """Date column of the daily partition."""
    label: ColumnName
    """Observed outcome (binary)."""
    prediction: ColumnName
    """The model's decision (binary)."""
    score: ColumnName | None = None
    """The model's score in [0, 1], if any; gives AUC, Brier score and calibration."""
    sensitive_features: tuple[SensitiveFeature, ...] = Field(min_length=1)
    """Columns whose groups are compared."""
    intersections: tuple[tuple[ColumnName, ...], ...] = ()
    """Lists of sensitive features whose combined groups are compared too, named like `sex×age_band`."""
    min_group_size: int = Field(default=30, ge=1)
    """Groups with fewer rows are reported as suppressed (no value, reason given), never as passing."""
    missing_groups: Literal["group", "reject"] = Field(
        default="group",
        description="NULL in a sensitive feature: report as its own group `(missing)`, or reject the partition.",
    )

    @model_validator(mode="after")
    def _intersections_use_declared_features(self) -> Bindings:
        declared = [f.name for f in self.sensitive_features]
        if len(set(declared)) != len(declared):
            raise ValueError(f"sensitive_features are declared twice: {declared}")
        for combo in self.intersections:
            if len(combo) < 2 or len(set(combo)) != len(combo):
                raise ValueError(
                    f"an intersection needs two or more distinct features, got {list(combo)}"
                )
            unknown = [c for c in combo if c not in declared]
            if unknown:
                raise ValueError(
                    f"intersection {list(combo)} names {unknown}, which are not sensitive_features (declared: {declared})"
                )
        return self

    @property
    def feature_sets(self) -> dict[str, tuple[str, ...]]:
        """Every feature set reported, by name: each feature, each intersection, then ``overall``."""
        sets: dict[str, tuple[str, ...]] = {f.name: (f.name,) for f in self.sensitive_features}
        sets.update({intersection_name(c): tuple(c) for c in self.intersections})
        sets[OVERALL] = ()
        return sets
