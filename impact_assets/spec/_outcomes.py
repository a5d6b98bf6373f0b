"""Outcomes that arrive after the decision: where they are, when a cohort of decisions matures, and
how performance is estimated until it does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from impact_assets.spec._base import DECISION_METRICS, ColumnName, Identifier, SpecModel

__all__ = [
    "DECISION_TIME_DISPARITIES",
    "DECISION_TIME_METRICS",
    "OUTCOME_METRICS",
    "EstimateSpec",
    "LabelCoverageRef",
    "OutcomesSpec",
]

#: Group metrics known at decision time; every other group metric needs the outcome.
DECISION_TIME_METRICS: tuple[str, ...] = ("count", "selection_rate")
#: Group metrics that need the outcome.
OUTCOME_METRICS: tuple[str, ...] = tuple(
    m
    for m in (*DECISION_METRICS, "auc", "brier_score", "expected_calibration_error")
    if m not in DECISION_TIME_METRICS
)
#: Disparities known at decision time (of the selection rate).
DECISION_TIME_DISPARITIES: tuple[str, ...] = ("demographic_parity", "selection_rate")


class EstimateSpec(SpecModel):
    """Performance estimated from calibrated scores (CBPE) for cohorts whose outcomes are awaited."""

    calibration_bound: float = Field(default=0.05, gt=0, le=1)
    """Largest expected calibration error, per group, on the matured reference cohorts at which estimates are still made."""
    reference_cohorts: int = Field(default=1, ge=1)
    """How many of the latest matured cohorts make the reference window the calibration is checked on."""
    level: float = Field(default=0.95, gt=0, lt=1)
    """Coverage of the estimates' intervals."""


class OutcomesSpec(SpecModel):
    """Outcomes known only some time after the decision, joined to the decisions by id."""

    table: Identifier | None = Field(
        default=None,
        description="Source or SQL model with one row per decision whose outcome is known (id, outcome, observed date); omitted: the outcome is the scored table's `bindings.label`, NULL until known.",
    )
    id_column: ColumnName | None = None
    """Column of `table` holding the decision's id; defaults to `bindings.id_column`."""
    label: ColumnName | None = None
    """Column of `table` holding the outcome (binary); defaults to `bindings.label`."""
    observed_at: ColumnName | None = None
    """Date on which each outcome became known; checked to be on or after the decision."""
    maturity_days: int = Field(ge=0)
    """Days after its last decision at which a cohort's outcomes count as known (e.g. 90, or 180 for loans)."""
    cohort: Literal["day", "week", "month", "year"] = "day"
    """The decisions assessed together once matured: a day, an ISO week, a calendar month, or a calendar year (historic data as one population)."""
    min_coverage: float | None = Field(default=None, gt=0, le=1)
    """A cohort also counts as matured once this share of its observable decisions has an outcome."""
    observed_for: Literal["all", "positive_decisions"] = "all"
    """`positive_decisions`: outcomes exist only for positive decisions (approved loans); outcome rates then rest on that subset, and label coverage says so."""
    estimate: EstimateSpec | None = EstimateSpec()
    """Estimates for immature cohorts; `null` for none."""
    sensor: bool = True
    """Re-assess a cohort's outcome-based results when its outcomes arrive or change."""


class LabelCoverageRef(SpecModel):
    """Share of a cohort's observable decisions whose outcome is recorded, in one group."""

    source: Literal["label_coverage"]
    """Evaluates label coverage (needs an `outcomes` section)."""
    feature_set: str = "overall"
    """Sensitive feature or intersection; `overall` for all rows."""
    group: str = "overall"
    """Group of the feature set; `overall` for all rows."""
