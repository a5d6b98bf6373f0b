"""Group metrics and disparities from per-group cells, with fairlearn's definitions.

Decision metrics are fairlearn's and scikit-learn's (``METRIC_FUNCTIONS``), restated on each
group's confusion counts (:data:`DECISION_FORMULAS`): the numbers ``MetricFrame`` gives on the raw
rows, as the tests check, without its cost of about 0.1 s per feature set even on a few cells. The
Brier score and the expected calibration error are sums over the cells' score sums (exact, not
binned approximations: each cell carries the sum and the sum of squares of its scores); the AUC is
exact, from :func:`score_auc`.

Two deliberate differences from fairlearn, so that no number is reported without evidence:

* a metric whose denominator is empty in a group (a TPR where nobody was a positive) is NULL with a
  reason; fairlearn and scikit-learn return 0 there;
* groups smaller than the spec's minimum size are suppressed: value NULL, ``suppressed`` true, reason
  stated; they take no part in disparities.

Disparities follow fairlearn's semantics (see :func:`impact_assets.fairness._formulas.disparity`);
``demographic_parity`` is the selection-rate disparity, ``equal_opportunity`` the TPR one and
``equalized_odds`` the worse of the TPR and FPR ones, as in fairlearn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from impact_assets.fairness._cells import SCORE_BINS
from impact_assets.fairness._formulas import DECISION_FORMULAS, DENOMINATOR, disparity
from impact_assets.spec import DISPARITY_METRICS, INTERSECTION_SEPARATOR, OVERALL

__all__ = [
    "DISPARITY_BASE",
    "confusion_by_group",
    "disparities",
    "group_metrics",
    "intersection_key",
]

SUPPRESSED = "group has {n} rows, fewer than the minimum group size {minimum}"
UNDEFINED = "undefined: the group has no {what}"
TOO_FEW_GROUPS = (
    "fewer than two groups with a value ({eligible} of {total} in the partition: {present}; "
    "suppressed below the minimum group size: {suppressed}; declared but absent: {absent})"
)
NO_REFERENCE = (
    "undefined: the reference group {group!r} has no value (absent, suppressed or undefined)"
)
RATIO_UNDEFINED = "undefined: a ratio would divide by 0"
AUC_DETAIL = "exact AUC (Mann-Whitney; tied scores count 1/2)"
ECE_DETAIL = (
    "{bins} equal-width score bins; sum over bins of |actual positives - sum of scores| / n"
)
BRIER_DETAIL = "mean squared difference between score and outcome"


#: The group metric(s) behind each disparity name.
DISPARITY_BASE: dict[str, tuple[str, ...]] = {
    **{
        m: (m,)
        for m in DISPARITY_METRICS
        if m not in ("demographic_parity", "equal_opportunity", "equalized_odds")
    },
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("true_positive_rate",),
    "equalized_odds": ("true_positive_rate", "false_positive_rate"),
}


def intersection_key(values: object) -> str:
    """Key of a group: the value, or the values of an intersection joined by ``×``."""
    if isinstance(values, tuple):
        return INTERSECTION_SEPARATOR.join(str(v) for v in values)
    return str(values)


def confusion_by_group(cells: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """TP, FP, TN, FN and score sums per group of ``features`` (all rows for ``()``)."""
    frame = cells.assign(
        tp=cells["n"] * ((cells["y_true"] == 1) & (cells["y_pred"] == 1)),
        fp=cells["n"] * ((cells["y_true"] == 0) & (cells["y_pred"] == 1)),
        tn=cells["n"] * ((cells["y_true"] == 0) & (cells["y_pred"] == 0)),
        fn=cells["n"] * ((cells["y_true"] == 1) & (cells["y_pred"] == 0)),
        sq_error=cells["score_sq"]
        - 2 * cells["y_true"] * cells["score_sum"]
        + cells["y_true"] * cells["n"],
    )
    columns = ["n", "tp", "fp", "tn", "fn", "sq_error"]
    if not features:
        totals = frame[columns].sum().to_frame().T
        totals.index = pd.Index([OVERALL], name="group_key")
        return totals
    grouped = frame.groupby(list(features), observed=True)[columns].sum()
    grouped.index = pd.Index([intersection_key(k) for k in grouped.index], name="group_key")
    return grouped


def _calibration_error(cells: pd.DataFrame, features: tuple[str, ...], bins: int) -> pd.Series:
    frame = cells.assign(
        _bin=cells["score_bin"] // (SCORE_BINS // bins),
        _gap=cells["y_true"] * cells["n"] - cells["score_sum"],
    )
    keys = [*features, "_bin"]
    per_bin = frame.groupby(keys, observed=True)["_gap"].sum().abs()
    by_group = (
        per_bin.groupby(level=list(range(len(features)))).sum()
        if features
        else pd.Series([per_bin.sum()], index=[OVERALL])
    )
    if features:
        by_group.index = pd.Index(
            [intersection_key(k) if len(features) > 1 else str(k) for k in by_group.index]
        )
    return by_group


def group_metrics(
    cells: pd.DataFrame,
    feature_sets: Mapping[str, tuple[str, ...]],
    *,
    min_group_size: int,
    auc: pd.DataFrame | None = None,
    calibration_bins: int = 10,
) -> pd.DataFrame:
    """Every group metric for every feature set, as a long table.

    Args:
        cells: Output of :func:`group_cells`.
        feature_sets: Name -> features, e.g. ``{"sex": ("sex",), "sex×age_band": (...), "overall": ()}``.
        min_group_size: Groups with fewer rows are suppressed.
        auc: Output of :func:`score_auc`, when a score is bound.
        calibration_bins: Equal-width bins of the expected calibration error (must divide 100).

    Returns:
        Columns ``feature_set, group_key, metric, value, n, suppressed, reason, detail``.

    Example:
        >>> cells = pd.DataFrame({"sex": ["f", "m"], "y_true": [1, 1], "y_pred": [1, 0], "score_bin": [-1, -1],
        ...                       "n": [40, 40], "score_sum": [0.0, 0.0], "score_sq": [0.0, 0.0]})
        >>> out = group_metrics(cells, {"sex": ("sex",), "overall": ()}, min_group_size=30)
        >>> out.query("metric == 'selection_rate'")[["group_key", "value"]].to_dict("records")
        [{'group_key': 'f', 'value': 1.0}, {'group_key': 'm', 'value': 0.0}, {'group_key': 'overall', 'value': 0.5}]
    """
    has_score = bool((cells["score_bin"] >= 0).any())
    aucs = {} if auc is None else {(r.feature_set, r.group_key): r.auc for r in auc.itertuples()}
    rows: list[dict] = []
    for name, features in feature_sets.items():
        counts = confusion_by_group(cells, features)
        calibration = _calibration_error(cells, features, calibration_bins) if has_score else None
        for key, c in counts.iterrows():
            n = int(c["n"])
            suppressed = n < min_group_size
            small = SUPPRESSED.format(n=n, minimum=min_group_size) if suppressed else None
            rows.append(_row(name, key, "count", float(n), n, suppressed, small))
            confusion = [np.array([c[k]]) for k in ("tp", "fp", "tn", "fn")]
            values: dict[str, float] = {
                m: float(formula(*confusion)[0]) for m, formula in DECISION_FORMULAS.items()
            }
            if has_score:
                values["auc"] = aucs.get((name, key), np.nan)
                values["brier_score"] = float(c["sq_error"]) / n
                values["expected_calibration_error"] = float(calibration.loc[key]) / n
            for metric, value in values.items():
                defined = not np.isnan(value)
                detail = {
                    "auc": AUC_DETAIL,
                    "brier_score": BRIER_DETAIL,
                    "expected_calibration_error": ECE_DETAIL.format(bins=calibration_bins),
                }.get(metric)
                if suppressed:
                    rows.append(_row(name, key, metric, None, n, True, small, detail))
                elif not defined:
                    rows.append(
                        _row(
                            name,
                            key,
                            metric,
                            None,
                            n,
                            False,
                            UNDEFINED.format(what=DENOMINATOR[metric]),
                            detail,
                        )
                    )
                else:
                    rows.append(_row(name, key, metric, float(value), n, False, None, detail))
    return pd.DataFrame(
        rows,
        columns=[
            "feature_set",
            "group_key",
            "metric",
            "value",
            "n",
            "suppressed",
            "reason",
            "detail",
        ],
    )


def _row(feature_set, group, metric, value, n, suppressed, reason, detail=None) -> dict:
    return {
        "feature_set": feature_set,
        "group_key": group,
        "metric": metric,
        "value": value,
        "n": n,
        "suppressed": suppressed,
        "reason": reason,
        "detail": detail,
    }


def relative_targets(feature_set: str, reference_groups: Mapping[str, str]) -> list[str]:
    """``between_groups``, ``to_overall``, and the reference group of the feature set if declared."""
    targets = ["between_groups", "to_overall"]
    if feature_set in reference_groups:
        targets.append(reference_groups[feature_set])
    return targets


def disparities(
    metrics: pd.DataFrame,
    feature_sets: Mapping[str, tuple[str, ...]],
    *,
    reference_groups: Mapping[str, str] | None = None,
    declared_groups: Mapping[str, Sequence[str] | None] | None = None,
) -> pd.DataFrame:
    """Disparities of each group metric across the groups of each feature set.

    Args:
        metrics: Output of :func:`group_metrics`.
        feature_sets: As for :func:`group_metrics`; ``overall`` is skipped.
        reference_groups: Feature set -> group also compared against (``relative_to`` = that group).
        declared_groups: Feature -> the values the spec expects, so that a disparity left undefined
            can name the groups absent from the partition.

    Returns:
        Columns ``feature_set, metric, method, relative_to, value, n, groups_compared, groups_suppressed, reason``.
    """
    reference_groups = reference_groups or {}
    rows: list[dict] = []
    overall = metrics[metrics["feature_set"] == OVERALL].set_index("metric")["value"]
    available = set(metrics["metric"])
    for name in feature_sets:
        if name == OVERALL:
            continue
        of_set = metrics[metrics["feature_set"] == name]
        counts = of_set[of_set["metric"] == "count"]
        groups = list(counts["group_key"])
        suppressed = int(counts["suppressed"].sum())
        declared = (declared_groups or {}).get(name) or ()
        membership = _Membership(
            present=groups,
            suppressed=list(counts.loc[counts["suppressed"], "group_key"]),
            absent=[g for g in declared if g not in groups],
        )
        compared_n = int(counts.loc[~counts["suppressed"], "n"].sum())
        table = of_set.pivot_table(
            index="metric", columns="group_key", values="value", aggfunc="first", dropna=False
        ).reindex(columns=groups)
        for metric, bases in DISPARITY_BASE.items():
            if not set(bases) <= available:
                continue
            for method in ("difference", "ratio"):
                for target in relative_targets(name, reference_groups):
                    reference = (
                        groups.index(target)
                        if target not in ("between_groups", "to_overall") and target in groups
                        else None
                    )
                    results = []
                    for base in bases:
                        values = (
                            table.loc[base].to_numpy(dtype="float64")
                            if base in table.index
                            else np.full(len(groups), np.nan)
                        )
                        base_overall = np.array([overall.get(base, np.nan)], dtype="float64")
                        if target not in ("between_groups", "to_overall") and reference is None:
                            results.append((np.nan, NO_REFERENCE.format(group=target)))
                            continue
                        value = disparity(
                            values[None, :],
                            base_overall,
                            method,
                            "to_overall" if reference is not None else target,
                            reference,
                        )[0]
                        results.append(
                            (
                                value,
                                None
                                if not np.isnan(value)
                                else _why(values, reference, target, membership),
                            )
                        )
                    value, reason = _worst(results, method)
                    eligible = int(
                        min(
                            (~np.isnan(table.loc[b].to_numpy(dtype="float64"))).sum()
                            if b in table.index
                            else 0
                            for b in bases
                        )
                    )
                    rows.append(
                        {
                            "feature_set": name,
                            "metric": metric,
                            "method": method,
                            "relative_to": target,
                            "value": value,
                            "n": compared_n,
                            "groups_compared": eligible,
                            "groups_suppressed": suppressed,
                            "reason": reason,
                        }
                    )
    return pd.DataFrame(
        rows,
        columns=[
            "feature_set",
            "metric",
            "method",
            "relative_to",
            "value",
            "n",
            "groups_compared",
            "groups_suppressed",
            "reason",
        ],
    )


@dataclass(frozen=True)
class _Membership:
    """Groups of a feature set in one partition: with rows, suppressed, declared but without rows."""

    present: list[str]
    suppressed: list[str]
    absent: list[str]


def _why(values: np.ndarray, reference: int | None, target: str, groups: _Membership) -> str:
    eligible = int((~np.isnan(values)).sum())
    if reference is not None and np.isnan(values[reference]):
        return NO_REFERENCE.format(group=target)
    if eligible < 2:
        return TOO_FEW_GROUPS.format(
            eligible=eligible,
            total=len(groups.present),
            present=", ".join(groups.present) or "none",
            suppressed=", ".join(groups.suppressed) or "none",
            absent=", ".join(groups.absent) or "none",
        )
    return RATIO_UNDEFINED


def _worst(results: list[tuple[float, str | None]], method: str) -> tuple[float | None, str | None]:
    """Worst case over the base metrics (max difference, min ratio), as fairlearn's equalized odds."""
    for value, reason in results:
        if np.isnan(value):
            return None, reason
    values = [v for v, _ in results]
    return float(max(values) if method == "difference" else min(values)), None
