"""Business KPIs, cost-benefit, drift, scenarios, sensitivity and the causal design."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import ColumnName, Identifier, NonEmptyText, SpecModel


class KpiSpec(SpecModel):
    """A business KPI: a SQL aggregate over the partition's scored rows, overall and per group."""

    name: Identifier
    """Name of the KPI; register entries refer to it."""
    sql: NonEmptyText = Field(
        description="A DuckDB aggregate expression over the scored table's columns, e.g. `avg(approved)`."
    )
    description: str = ""
    """Shown in the UI and the report."""


class CostBenefitSpec(SpecModel):
    """Value of each decision outcome (positive: a benefit, negative: a cost), a constant or a SQL
    expression over the scored row (e.g. `0.1 * credit_amount`)."""

    tp: float | NonEmptyText = Field(description="Positive decision, positive outcome.")
    fp: float | NonEmptyText = Field(description="Positive decision, negative outcome.")
    tn: float | NonEmptyText = Field(description="Negative decision, negative outcome.")
    fn: float | NonEmptyText = Field(description="Negative decision, positive outcome.")
    currency: str = "EUR"
    """Unit of the values, shown with them."""


class DriftSpec(SpecModel):
    """Drift of the scored rows against the model version's training snapshot."""

    columns: tuple[ColumnName, ...] | None = Field(
        default=None, description="Columns compared; default: the model's features."
    )
    bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Quantile bins of numeric columns (from the reference).",
    )


class ScenarioSpec(SpecModel):
    """A what-if: the partition re-evaluated under a changed threshold, group mix, feature or base rate."""

    name: Identifier
    """Name of the scenario; register entries refer to it."""
    kind: Literal["threshold_sweep", "group_mix", "feature_shift", "base_rate"]
    """`threshold_sweep`, `group_mix` (reweighted groups), `feature_shift` (re-scored by the model) or `base_rate`."""
    description: str = ""
    """Shown in the UI and the report."""
    thresholds: tuple[Annotated[float, Field(ge=0, le=1)], ...] = Field(
        default=(), description="threshold_sweep: decision thresholds on the score."
    )
    feature: str | None = Field(default=None, description="group_mix: the sensitive feature.")
    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="group_mix: relative weight of each group (others 1); the total stays the same.",
    )
    column: ColumnName | None = Field(
        default=None, description="feature_shift: a model feature (numeric)."
    )
    multiply: float = Field(default=1.0, description="feature_shift: factor applied to the column.")
    add: float = Field(default=0.0, description="feature_shift: amount added after multiplying.")
    factor: float | None = Field(
        default=None, gt=0, description="base_rate: the base rate is multiplied by this."
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ScenarioSpec:
        needed = {
            "threshold_sweep": ("thresholds",),
            "group_mix": ("feature", "weights"),
            "feature_shift": ("column",),
            "base_rate": ("factor",),
        }[self.kind]
        missing = [f for f in needed if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.kind} scenario needs {', '.join(missing)}")
        return self


class SensitivitySpec(SpecModel):
    """Which features drive a disparity: each model feature permuted within the partition, re-scored."""

    feature_set: str = Field(
        description="The sensitive feature (or intersection) whose disparity is watched."
    )
    metric: Literal["demographic_parity_ratio", "demographic_parity_difference"] = (
        "demographic_parity_ratio"
    )
    """The disparity watched."""
    repeats: int = Field(default=5, ge=2, le=100)
    """Permutations per feature."""
    seed: int = 0
    """Seed of the permutations and of the sample."""
    max_rows: int = Field(default=100_000, ge=1_000)
    """Rows of the partition the permutations re-score: a seeded sample of this size on larger days.
    Each permutation re-scores every row it is given, so the cost grows with rows × features × repeats."""


class RolloutMarker(SpecModel):
    """A column of the scored rows that marks what the rollout changed (e.g. `offer_version` = `2`)."""

    column: ColumnName
    """Column of the scored table that marks rolled-out rows."""
    value: str
    """Its value on rolled-out rows; the rollout day is the first day a treated row has it."""


class CausalSpec(SpecModel):
    """A difference-in-differences estimate of a rollout's effect on an outcome of the scored rows."""

    name: Identifier
    """Name of the estimate; register entries refer to it."""
    outcome: NonEmptyText = Field(
        description="SQL expression of the outcome per scored row, e.g. `CAST(repaid AS DOUBLE)`."
    )
    treated: NonEmptyText = Field(description="SQL predicate of the rows in the treated segment.")
    comparison: NonEmptyText | None = Field(
        default=None, description="SQL predicate of the comparison segment; default: not treated."
    )
    rollout: dt.date | None = Field(
        default=None, description="First day the treated segment saw the change."
    )
    rollout_from: RolloutMarker | None = Field(
        default=None,
        description="Or: the rollout is the first day a treated row has this value in this column.",
    )
    pre_days: int = Field(default=14, ge=2, le=366)
    """Days before the rollout in the window."""
    post_days: int = Field(default=14, ge=1, le=366)
    """Days from the rollout on in the window (at most)."""
    level: float = Field(default=0.95, gt=0.5, lt=1)
    """Confidence level of the interval."""
    description: str = ""
    """Shown in the UI and the report."""

    @model_validator(mode="after")
    def _one_rollout(self) -> CausalSpec:
        if (self.rollout is None) == (self.rollout_from is None):
            raise ValueError(
                "give the rollout date (rollout) or the column marking it (rollout_from)"
            )
        return self


class AnalyticsSpec(SpecModel):
    """Impact analytics beyond fairness: KPIs, cost-benefit, drift, scenarios, sensitivity, causal."""

    kpis: tuple[KpiSpec, ...] = ()
    """Named SQL aggregates over the scored rows, overall and per group."""
    cost_benefit: CostBenefitSpec | None = None
    """Value of each decision outcome; gives net benefit and error costs per group."""
    drift: DriftSpec | None = DriftSpec()
    """Drift against the model version's training snapshot; null turns it off."""
    scenarios: tuple[ScenarioSpec, ...] = ()
    """What-ifs evaluated beside the baseline."""
    sensitivity: SensitivitySpec | None = None
    """Which model features carry a disparity (permutation)."""
    causal: tuple[CausalSpec, ...] = ()
    """Difference-in-differences estimates of rollouts."""
