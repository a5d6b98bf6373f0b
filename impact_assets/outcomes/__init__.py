"""Outcomes that arrive after the decision: performance estimated from calibrated scores until they do."""

from impact_assets.outcomes._estimate import (
    ESTIMATED_METRICS,
    calibration_refusals,
    estimated_performance,
)

__all__ = ["ESTIMATED_METRICS", "calibration_refusals", "estimated_performance"]
