"""Group metrics and disparities from per-group confusion cells, with fairlearn's definitions.

Point estimates come from fairlearn's ``MetricFrame`` evaluated on the distinct cells weighted by
their row counts, which gives exactly what ``MetricFrame`` gives on the raw rows. Two deliberate
differences, both so that no number is reported without evidence:

* a rate whose denominator is empty in a group (a TPR where nobody was a positive) is NULL with a
  reason; fairlearn returns 0 there;
* groups smaller than the spec's minimum size are suppressed: value NULL, ``suppressed`` true,
  reason stated; they take no part in disparities.

Disparities follow fairlearn's semantics: ``difference`` between groups is max - min, ``ratio`` is
min / max; ``to_overall`` compares each group with the overall value (largest absolute difference,
smallest of ``g/o`` and ``o/g``). ``demographic_parity`` is the selection-rate disparity,
``equal_opportunity`` the TPR one, and ``equalized_odds`` the worse of the TPR and FPR ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from impact_assets.spec import INTERSECTION_SEPARATOR, OVERALL

__all__ = ["DISPARITY_BASE", "METRIC_FUNCTIONS", "disparities", "group_metrics"]

SUPPRESSED = "group has {n} rows, fewer than the minimum group size {minimum}"
UNDEFINED = "undefined: the group has no {what}"
TOO_FEW_GROUPS = "fewer than two groups with a value ({eligible} of {total}; {suppressed} suppressed)"
ZERO_DENOMINATOR = "undefined: the largest group value is 0"


def _base_rate(y_true, y_pred, *, sample_weight=None) -> float:
    return selection_rate(y_true, y_true, sample_weight=sample_weight)


#: fairlearn/scikit-learn function of each rate metric (``count`` is the weighted group size).
METRIC_FUNCTIONS: dict[str, Callable[..., float]] = {
    "base_rate": _base_rate,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "true_negative_rate": true_negative_rate,
    "accuracy": accuracy_score,
}

#: Which rows a metric's denominator counts: all rows, actual positives or actual negatives.
_DENOMINATOR: dict[str, str] = {
    "base_rate": "rows",
    "selection_rate": "rows",
    "accuracy": "rows",
    "true_positive_rate": "positives",
    "false_negative_rate": "positives",
    "false_positive_rate": "negatives",
    "true_negative_rate": "negatives",
}

#: The rate metric(s) behind each disparity name.
DISPARITY_BASE: dict[str, tuple[str, ...]] = {
    "selection_rate": ("selection_rate",),
    "true_positive_rate": ("true_positive_rate",),
    "false_positive_rate": ("false_positive_rate",),
    "false_negative_rate": ("false_negative_rate",),
    "accuracy": ("accuracy",),
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("true_positive_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
}


def _group_key(values: object) -> str:
    if isinstance(values, tuple):
        return INTERSECTION_SEPARATOR.join(str(v) for v in values)
    return str(values)


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    n = frame["n"]
    return {
        "rows": int(n.sum()),
        "positives": int(n[frame["y_true"] == 1].sum()),
        "negatives": int(n[frame["y_true"] == 0].sum()),
    }


def _metric_frame(cells: pd.DataFrame, features: tuple[str, ...]) -> MetricFrame:
    weights = cells["n"].to_numpy()
    return MetricFrame(
        metrics=METRIC_FUNCTIONS,
        y_true=cells["y_true"].to_numpy(),
        y_pred=cells["y_pred"].to_numpy(),
        sensitive_features=cells[list(features)],
        sample_params={name: {"sample_weight": weights} for name in METRIC_FUNCTIONS},
    )


def _rows_for_group(feature_set: str, group: str, values: Mapping[str, float], counts: dict[str, int], minimum: int) -> list[dict]:
    rows = [{"feature_set": feature_set, "group_key": group, "metric": "count", "value": float(counts["rows"]),
             "n": counts["rows"], "suppressed": False, "reason": None}]
    suppressed = counts["rows"] < minimum
    for metric, value in values.items():
        denominator = _DENOMINATOR[metric]
        if suppressed:
            rows.append({"feature_set": feature_set, "group_key": group, "metric": metric, "value": None, "n": counts["rows"],
                         "suppressed": True, "reason": SUPPRESSED.format(n=counts["rows"], minimum=minimum)})
        elif counts[denominator] == 0:
            rows.append({"feature_set": feature_set, "group_key": group, "metric": metric, "value": None, "n": counts["rows"],
                         "suppressed": False, "reason": UNDEFINED.format(what=denominator.replace("rows", "rows"))})
        else:
            rows.append({"feature_set": feature_set, "group_key": group, "metric": metric, "value": float(value),
                         "n": counts["rows"], "suppressed": False, "reason": None})
    # The count itself is never hidden from the table, but a suppressed group's count is flagged.
    rows[0]["suppressed"] = suppressed
    rows[0]["reason"] = SUPPRESSED.format(n=counts["rows"], minimum=minimum) if suppressed else None
    return rows


def group_metrics(cells: pd.DataFrame, feature_sets: Mapping[str, tuple[str, ...]], *, min_group_size: int) -> pd.DataFrame:
    """Every group metric for every feature set, as a long table.

    Args:
        cells: Output of :func:`group_cells` (``<features>``, ``y_true``, ``y_pred``, ``n``).
        feature_sets: Name -> features, e.g. ``{"sex": ("sex",), "sex×age_band": (...), "overall": ()}``.
        min_group_size: Groups with fewer rows are suppressed.

    Returns:
        Columns ``feature_set, group_key, metric, value, n, suppressed, reason``.

    Example:
        >>> cells = pd.DataFrame({"sex": ["f", "m"], "y_true": [1, 1], "y_pred": [1, 0], "n": [40, 40]})
        >>> out = group_metrics(cells, {"sex": ("sex",), "overall": ()}, min_group_size=30)
        >>> out.query("metric == 'selection_rate'")[["group_key", "value"]].to_dict("records")
        [{'group_key': 'f', 'value': 1.0}, {'group_key': 'm', 'value': 0.0}, {'group_key': 'overall', 'value': 0.5}]
    """
    rows: list[dict] = []
    overall: pd.Series | None = None
    for name, features in feature_sets.items():
        if not features:
            continue
        marginal = cells.groupby([*features, "y_true", "y_pred"], as_index=False, observed=True)["n"].sum()
        frame = _metric_frame(marginal, features)
        overall = frame.overall
        sizes = marginal.groupby(list(features), observed=True)
        for key, group_cells in sizes:
            key = key if len(features) > 1 else key[0]
            rows += _rows_for_group(name, _group_key(key), frame.by_group.loc[key], _counts(group_cells), min_group_size)
    if OVERALL in feature_sets:
        if overall is None:
            overall = _metric_frame(cells.assign(_all=OVERALL), ("_all",)).overall
        rows += _rows_for_group(OVERALL, OVERALL, overall, _counts(cells), min_group_size)
    return pd.DataFrame(rows, columns=["feature_set", "group_key", "metric", "value", "n", "suppressed", "reason"])


def _disparity(values: pd.Series, overall: float | None, method: str, relative_to: str) -> tuple[float | None, str | None]:
    if relative_to == "between_groups":
        low, high = float(values.min()), float(values.max())
        if method == "difference":
            return high - low, None
        return (low / high, None) if high != 0 else (None, ZERO_DENOMINATOR)
    if overall is None or (isinstance(overall, float) and math.isnan(overall)):
        return None, "undefined: no overall value"
    if method == "difference":
        return float(np.abs(values - overall).max()), None
    if overall == 0 or (values == 0).any():
        return None, "undefined: a value or the overall value is 0"
    return float(np.minimum(values / overall, overall / values).min()), None


def disparities(metrics: pd.DataFrame, feature_sets: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """Disparities of each rate metric across the groups of each feature set.

    Args:
        metrics: Output of :func:`group_metrics`.
        feature_sets: As for :func:`group_metrics`; ``overall`` is skipped.

    Returns:
        Columns ``feature_set, metric, method, relative_to, value, n, groups_compared, groups_suppressed, reason``.
    """
    rows: list[dict] = []
    overall_values = metrics[metrics["feature_set"] == OVERALL].set_index("metric")["value"]
    for name in feature_sets:
        if name == OVERALL:
            continue
        of_set = metrics[metrics["feature_set"] == name]
        counts = of_set[of_set["metric"] == "count"]
        suppressed = int(counts["suppressed"].sum())
        total = len(counts)
        compared_n = int(counts.loc[~counts["suppressed"], "n"].sum())
        for disparity, bases in DISPARITY_BASE.items():
            for method in ("difference", "ratio"):
                for relative_to in ("between_groups", "to_overall"):
                    results: list[tuple[float | None, str | None]] = []
                    eligible_counts = []
                    for base in bases:
                        values = of_set[(of_set["metric"] == base) & of_set["value"].notna()]["value"].astype(float)
                        eligible_counts.append(len(values))
                        if len(values) < 2:
                            results.append((None, TOO_FEW_GROUPS.format(eligible=len(values), total=total, suppressed=suppressed)))
                            continue
                        overall = overall_values.get(base)
                        results.append(_disparity(values, None if pd.isna(overall) else float(overall), method, relative_to))
                    value, reason = _combine(results, method)
                    rows.append({"feature_set": name, "metric": disparity, "method": method, "relative_to": relative_to,
                                 "value": value, "n": compared_n, "groups_compared": min(eligible_counts),
                                 "groups_suppressed": suppressed, "reason": reason})
    return pd.DataFrame(rows, columns=["feature_set", "metric", "method", "relative_to", "value", "n",
                                       "groups_compared", "groups_suppressed", "reason"])


def _combine(results: list[tuple[float | None, str | None]], method: str) -> tuple[float | None, str | None]:
    """Worst case over the base metrics (max difference, min ratio), as fairlearn's equalized odds."""
    for value, reason in results:
        if value is None:
            return None, reason
    values = [v for v, _ in results if v is not None]
    return (max(values) if method == "difference" else min(values)), None
