"""Fairness and performance by group: cells in DuckDB, metrics with fairlearn's definitions."""

from impact_assets.fairness._cells import MISSING_GROUP, GroupCells, group_cells
from impact_assets.fairness._metrics import DISPARITY_BASE, METRIC_FUNCTIONS, disparities, group_metrics

__all__ = ["DISPARITY_BASE", "METRIC_FUNCTIONS", "MISSING_GROUP", "GroupCells", "disparities", "group_cells", "group_metrics"]
