"""Impact analytics beyond fairness: business KPIs and cost-benefit by group, drift against a reference."""

from impact_assets.analytics._causal import DidEstimate, did_estimate
from impact_assets.analytics._drift import PSI_FLOOR, DriftColumn, column_drift, psi
from impact_assets.analytics._kpis import compute_kpis
from impact_assets.analytics._scenarios import DISPARITY_RESULTS, evaluate_scenarios
from impact_assets.analytics._sensitivity import (
    disparity_and_accuracy,
    group_keys,
    permutation_sensitivity,
)

__all__ = [
    "DISPARITY_RESULTS",
    "PSI_FLOOR",
    "DidEstimate",
    "DriftColumn",
    "column_drift",
    "compute_kpis",
    "did_estimate",
    "disparity_and_accuracy",
    "evaluate_scenarios",
    "group_keys",
    "permutation_sensitivity",
    "psi",
]
