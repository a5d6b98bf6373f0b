"""Vectorized metric formulas on counts, for bootstrap resamples.

Each formula takes arrays of counts of any shape (resamples × groups) and returns an array of the
same shape, NaN where the metric is undefined (empty denominator). They restate the definitions of
fairlearn and scikit-learn on confusion counts; a test pins them to those libraries' values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DECISION_FORMULAS", "DENOMINATOR", "disparity"]

Counts = np.ndarray


def _ratio(numerator: Counts, denominator: Counts) -> Counts:
    numerator = np.asarray(numerator, dtype="float64")
    denominator = np.asarray(denominator, dtype="float64")
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


#: Metric -> f(tp, fp, tn, fn).
DECISION_FORMULAS: dict[str, Callable[[Counts, Counts, Counts, Counts], Counts]] = {
    "base_rate": lambda tp, fp, tn, fn: _ratio(tp + fn, tp + fp + tn + fn),
    "selection_rate": lambda tp, fp, tn, fn: _ratio(tp + fp, tp + fp + tn + fn),
    "true_positive_rate": lambda tp, fp, tn, fn: _ratio(tp, tp + fn),
    "false_positive_rate": lambda tp, fp, tn, fn: _ratio(fp, fp + tn),
    "false_negative_rate": lambda tp, fp, tn, fn: _ratio(fn, tp + fn),
    "true_negative_rate": lambda tp, fp, tn, fn: _ratio(tn, tn + fp),
    "precision": lambda tp, fp, tn, fn: _ratio(tp, tp + fp),
    "negative_predictive_value": lambda tp, fp, tn, fn: _ratio(tn, tn + fn),
    "accuracy": lambda tp, fp, tn, fn: _ratio(tp + tn, tp + fp + tn + fn),
    "balanced_accuracy": lambda tp, fp, tn, fn: (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2,
    "f1": lambda tp, fp, tn, fn: _ratio(2 * tp, 2 * tp + fp + fn),
}

#: Which counts a metric's denominator needs, as a readable condition for the "undefined" reason.
DENOMINATOR: dict[str, str] = {
    "base_rate": "rows",
    "selection_rate": "rows",
    "accuracy": "rows",
    "true_positive_rate": "actual positives",
    "false_negative_rate": "actual positives",
    "false_positive_rate": "actual negatives",
    "true_negative_rate": "actual negatives",
    "precision": "positive decisions",
    "negative_predictive_value": "negative decisions",
    "balanced_accuracy": "both actual positives and actual negatives",
    "f1": "actual positives or positive decisions",
    "auc": "both actual positives and actual negatives",
    "brier_score": "rows",
    "expected_calibration_error": "rows",
}


def disparity(
    values: np.ndarray,
    overall: np.ndarray,
    method: str,
    relative_to: str,
    reference: int | None = None,
) -> np.ndarray:
    """Disparity of each row of ``values`` (resamples × groups; NaN marks a group that takes no part).

    fairlearn's semantics: ``between_groups`` difference is max - min and ratio min / max;
    ``to_overall`` (and a reference group, which takes the place of overall) difference is the largest
    absolute difference and ratio the smallest of ``g / o`` and ``o / g``. NaN where fewer than two
    groups have a value, or a ratio divides by 0.
    """
    values = np.atleast_2d(np.asarray(values, dtype="float64"))
    present = ~np.isnan(values)
    enough = present.sum(axis=1) >= 2
    out = np.full(values.shape[0], np.nan)
    with np.errstate(all="ignore"):
        if relative_to == "between_groups":
            low = np.where(present, values, np.inf).min(axis=1)
            high = np.where(present, values, -np.inf).max(axis=1)
            result = high - low if method == "difference" else _ratio(low, high)
        else:
            base = (
                np.asarray(overall, dtype="float64").reshape(-1)
                if reference is None
                else values[:, reference]
            )
            if reference is not None:
                present = present.copy()
                present[:, reference] = False
                enough = (present.sum(axis=1) >= 1) & ~np.isnan(base)
            if method == "difference":
                result = np.where(present, np.abs(values - base[:, None]), -np.inf).max(axis=1)
            else:
                # min(g / o, o / g) for non-negative rates: 0 when one of them is 0, undefined when both are
                pair = _ratio(np.minimum(values, base[:, None]), np.maximum(values, base[:, None]))
                undefined = (present & np.isnan(pair)).any(axis=1)
                result = np.where(present, pair, np.inf).min(axis=1)
                result[undefined] = np.nan
    out[enough] = result[enough]
    out[~np.isfinite(out)] = np.nan
    return out
