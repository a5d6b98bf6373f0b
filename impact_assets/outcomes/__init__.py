"""Outcomes that arrive after the decision: cohorts and their maturity, whose outcomes are known,
and performance estimated from calibrated scores until they are."""

from impact_assets.outcomes._cohorts import CohortWindow, cohort_of, label_coverage
from impact_assets.outcomes._entries import needs_outcomes, reads_column
from impact_assets.outcomes._estimate import (
    ESTIMATED_METRICS,
    calibration_refusals,
    estimated_disparity_intervals,
    estimated_performance,
)

__all__ = [
    "ESTIMATED_METRICS",
    "CohortWindow",
    "calibration_refusals",
    "cohort_of",
    "estimated_disparity_intervals",
    "estimated_performance",
    "label_coverage",
    "needs_outcomes",
    "reads_column",
]
