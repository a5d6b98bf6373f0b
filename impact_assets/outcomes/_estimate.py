"""Performance estimated before outcomes arrive, from calibrated scores (confidence-based
performance estimation, as NannyML's CBPE), per group.

When the score is the probability of the positive outcome, each row of a group contributes ``p`` to
the expected positives and ``1 - p`` to the expected negatives of its decision, so the expected
confusion matrix of a group follows from its per-decision sums of scores: expected TP is the sum of
the approved rows' scores, expected FN the sum of the declined rows' scores. The rates are ratios of
these expectations. Each cell's outcomes are independent Bernoulli draws, so the realised TP and FN
have variances ``sum p (1 - p)`` (from the cells' sums of scores and of their squares) and the
interval of a rate follows by the delta method: it says where the *realised* rate of these rows will
fall once their outcomes are known.

The estimate is only as good as the calibration it rests on, so it is made only for groups whose
score is calibrated on a matured reference window (expected calibration error within a bound), and
it assumes no concept drift: if what the score means changes after the reference window (a new
product, a downturn), the estimate is wrong in ways no interval shows. An estimate is never a
measurement: every row says ``estimated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import pandas as pd

from impact_assets.fairness import intersection_key
from impact_assets.spec import OVERALL

__all__ = [
    "ESTIMATED_METRICS",
    "calibration_refusals",
    "estimated_performance",
]

#: The group metrics estimated; each is a rate of the expected confusion matrix.
ESTIMATED_METRICS = (
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "true_negative_rate",
    "precision",
    "accuracy",
    "base_rate",
)
ESTIMATE_DETAIL = (
    "estimated from calibrated scores (CBPE): expected confusion matrix, "
    "{level:g} % delta-method interval of the realised rate; assumes no concept drift"
)
NOT_CALIBRATED = (
    "no estimate: the score's expected calibration error in this group is {ece:.4g} on the "
    "matured reference window {window}, above the bound {bound:g}"
)
NO_REFERENCE = (
    "no estimate: the matured reference window {window} has no calibration result for this group"
)
SUPPRESSED = "group has {n} rows, fewer than the minimum group size {minimum}"
UNDEFINED = "undefined: the group has no expected {what}"

COLUMNS = [
    "feature_set",
    "group_key",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "suppressed",
    "reason",
    "detail",
]


def _expected_counts(cells: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """Per group: rows, approved rows, expected positives among approved (``tp``) and declined
    (``fn``) rows, and the variances of those two sums."""
    approved = cells["y_pred"] == 1
    variance = cells["score_sum"] - cells["score_sq"]  # sum of p (1 - p)
    frame = pd.DataFrame(
        {
            "n": cells["n"],
            "n1": cells["n"].where(approved, 0),
            "tp": cells["score_sum"].where(approved, 0.0),
            "fn": cells["score_sum"].where(~approved, 0.0),
            "var_tp": variance.where(approved, 0.0),
            "var_fn": variance.where(~approved, 0.0),
        }
    )
    if not features:
        totals = frame.sum().to_frame().T
        totals.index = pd.Index([OVERALL], name="group_key")
        return totals
    grouped = frame.groupby([cells[f] for f in features], observed=True).sum()
    grouped.index = pd.Index([intersection_key(k) for k in grouped.index], name="group_key")
    return grouped


def _ratio(a: float, b: float, var_a: float, var_b: float) -> tuple[float, float]:
    """``a / (a + b)`` for independent sums ``a`` and ``b``, and its delta-method variance."""
    total = a + b
    if total <= 0:
        return float("nan"), float("nan")
    return a / total, (b * b * var_a + a * a * var_b) / total**4


def _estimates(c: pd.Series) -> dict[str, tuple[float, float, str]]:
    """Each estimated metric of one group: value, variance and what its denominator counts."""
    n, n1 = float(c["n"]), float(c["n1"])
    n0 = n - n1
    tp, fn, var_tp, var_fn = float(c["tp"]), float(c["fn"]), float(c["var_tp"]), float(c["var_fn"])
    fp, tn = n1 - tp, n0 - fn  # the approved rows' expected negatives, the declined rows'
    tpr, var_tpr = _ratio(tp, fn, var_tp, var_fn)
    fpr, var_fpr = _ratio(fp, tn, var_tp, var_fn)
    precision = tp / n1 if n1 else float("nan")
    return {
        "true_positive_rate": (tpr, var_tpr, "positives"),
        "false_negative_rate": (1 - tpr, var_tpr, "positives"),
        "false_positive_rate": (fpr, var_fpr, "negatives"),
        "true_negative_rate": (1 - fpr, var_fpr, "negatives"),
        "precision": (precision, var_tp / (n1 * n1) if n1 else float("nan"), "approved rows"),
        "accuracy": ((tp + tn) / n, (var_tp + var_fn) / (n * n), "rows"),
        "base_rate": ((tp + fn) / n, (var_tp + var_fn) / (n * n), "rows"),
    }


def calibration_refusals(
    reference: pd.DataFrame, *, bound: float, window: str
) -> dict[tuple[str, str], str | None]:
    """Why each group's estimate is refused (``None``: it may be made).

    Args:
        reference: Realised group metrics of a matured reference window, as :func:`group_metrics`
            gives them (its ``expected_calibration_error`` rows are read).
        bound: Largest expected calibration error at which estimates are still made.
        window: The reference window, for the reasons (e.g. ``2026-03-01..2026-03-31``).
    """
    rows = reference[reference["metric"] == "expected_calibration_error"]
    refusals: dict[tuple[str, str], str | None] = {}
    for r in rows.itertuples():
        if r.value is None or pd.isna(r.value):
            refusals[(r.feature_set, r.group_key)] = NO_REFERENCE.format(window=window)
        elif r.value > bound:
            refusals[(r.feature_set, r.group_key)] = NOT_CALIBRATED.format(
                ece=r.value, window=window, bound=bound
            )
        else:
            refusals[(r.feature_set, r.group_key)] = None
    return refusals


def estimated_performance(
    cells: pd.DataFrame,
    feature_sets: Mapping[str, tuple[str, ...]],
    refusals: Mapping[tuple[str, str], str | None],
    *,
    min_group_size: int,
    window: str,
    level: float = 0.95,
) -> pd.DataFrame:
    """Estimated rates per group of each feature set, with intervals of the realised rates.

    Args:
        cells: Cells of the decisions whose outcomes are awaited, as :func:`group_cells` gives them
            (their ``y_true`` is not read; the score sums are).
        feature_sets: Name -> features, as ``Bindings.feature_sets``.
        refusals: Output of :func:`calibration_refusals` for the reference window; a group missing
            from it has no reference and gets no estimate.
        min_group_size: Groups with fewer rows are suppressed.
        window: The reference window, for the reasons.
        level: Coverage of the intervals.

    Returns:
        Columns ``feature_set, group_key, metric, value, ci_low, ci_high, n, suppressed, reason,
        detail``; a refused or undefined estimate has no value and says why.

    Example:
        >>> cells = pd.DataFrame({"y_pred": [1, 0], "n": [100, 100], "score_sum": [80.0, 20.0],
        ...                       "score_sq": [64.0, 4.0], "y_true": [0, 0], "score_bin": [80, 20]})
        >>> out = estimated_performance(cells, {"overall": ()}, {("overall", "overall"): None},
        ...                             min_group_size=30, window="2026-01")
        >>> round(float(out.set_index("metric").loc["true_positive_rate", "value"]), 3)
        0.8
    """
    z = NormalDist().inv_cdf(0.5 + level / 2)
    detail = ESTIMATE_DETAIL.format(level=level * 100)
    rows = []
    for name, features in feature_sets.items():
        for key, counts in _expected_counts(cells, features).iterrows():
            n = int(counts["n"])
            refused = refusals.get((name, key), NO_REFERENCE.format(window=window))
            small = n < min_group_size
            for metric, (value, variance, what) in _estimates(counts).items():
                if small or refused is not None or np.isnan(value):
                    reason = (
                        SUPPRESSED.format(n=n, minimum=min_group_size)
                        if small
                        else refused or UNDEFINED.format(what=what)
                    )
                    rows.append((name, key, metric, None, None, None, n, small, reason, detail))
                    continue
                half = z * float(np.sqrt(variance))
                low, high = max(value - half, 0.0), min(value + half, 1.0)
                rows.append((name, key, metric, value, low, high, n, False, None, detail))
    return pd.DataFrame(rows, columns=COLUMNS)


def estimated_disparity_intervals(
    metrics: pd.DataFrame, gaps: pd.DataFrame, *, level: float = 0.95
) -> pd.DataFrame:
    """Intervals of estimated between-group disparities of one rate, from the two groups that set
    them (the highest and the lowest rate), treated as independent: ``sqrt(v_hi + v_lo)`` for a
    difference, on the log scale for a ratio. Other disparities keep no interval.

    Approximate: the two groups are picked because they are extreme, which the interval ignores.
    """
    from impact_assets.fairness import DISPARITY_BASE

    z = NormalDist().inv_cdf(0.5 + level / 2)
    out = gaps.copy()
    for i, gap in out.iterrows():
        bases = DISPARITY_BASE.get(gap["metric"], ())
        if gap["relative_to"] != "between_groups" or len(bases) != 1 or pd.isna(gap["value"]):
            continue
        rows = metrics[
            (metrics["feature_set"] == gap["feature_set"])
            & (metrics["metric"] == bases[0])
            & metrics["value"].notna()
        ]
        if len(rows) < 2:
            continue
        hi, lo = rows.loc[rows["value"].idxmax()], rows.loc[rows["value"].idxmin()]
        var_hi, var_lo = (((r["ci_high"] - r["ci_low"]) / (2 * z)) ** 2 for r in (hi, lo))
        if gap["method"] == "difference":
            half = z * float(np.sqrt(var_hi + var_lo))
            out.loc[i, ["ci_low", "ci_high"]] = [max(gap["value"] - half, 0.0), gap["value"] + half]
        elif lo["value"] > 0:
            spread = z * float(np.sqrt(var_lo / lo["value"] ** 2 + var_hi / hi["value"] ** 2))
            out.loc[i, ["ci_low", "ci_high"]] = [
                gap["value"] * np.exp(-spread),
                min(gap["value"] * np.exp(spread), 1.0),
            ]
    return out
