"""Fairness and performance by group: cells in DuckDB, metrics with fairlearn's definitions, bootstrap intervals."""

from impact_assets.fairness._auc import score_auc
from impact_assets.fairness._bootstrap import DETAIL as BOOTSTRAP_DETAIL
from impact_assets.fairness._bootstrap import bootstrap_intervals, resample_cells
from impact_assets.fairness._cells import (
    MISSING_GROUP,
    OTHER_GROUP,
    SCORE_BINS,
    GroupCells,
    group_cells,
    group_key,
    group_key_sql,
)
from impact_assets.fairness._formulas import DECISION_FORMULAS, disparity
from impact_assets.fairness._metrics import (
    DISPARITY_BASE,
    confusion_by_group,
    disparities,
    group_metrics,
    intersection_key,
)

__all__ = [
    "BOOTSTRAP_DETAIL",
    "DECISION_FORMULAS",
    "DISPARITY_BASE",
    "METRIC_FUNCTIONS",
    "MISSING_GROUP",
    "OTHER_GROUP",
    "SCORE_BINS",
    "GroupCells",
    "bootstrap_intervals",
    "confusion_by_group",
    "disparities",
    "disparity",
    "group_cells",
    "group_key",
    "group_key_sql",
    "group_metrics",
    "intersection_key",
    "resample_cells",
    "score_auc",
]


def __getattr__(name: str) -> object:
    if name == "METRIC_FUNCTIONS":  # the tests' and benchmarks' reference, imported when asked for
        from impact_assets.fairness._reference import METRIC_FUNCTIONS

        return METRIC_FUNCTIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
