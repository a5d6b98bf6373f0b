"""Sensitivity analysis: which model features drive a disparity, by permutation within the partition.

For each feature the model uses, its values are shuffled across the partition's rows (breaking its link
to everything else while keeping its distribution), the model re-scores the rows and decides at its
threshold, and the watched disparity (demographic parity between the groups of a feature set) and the
accuracy are measured again. Repeated with different shuffles (seeded), the mean change and its standard
deviation say how much of the disparity runs through that feature; features are ranked by the size of
the mean change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.spec import INTERSECTION_SEPARATOR

__all__ = ["disparity_and_accuracy", "group_keys", "permutation_sensitivity"]


def disparity_and_accuracy(
    decisions: np.ndarray,
    positives: np.ndarray,
    groups: pd.Series | np.ndarray,
    *,
    metric: str,
    min_group_size: int,
) -> tuple[float | None, float]:
    """Demographic parity (ratio or difference) between groups of at least ``min_group_size`` rows,
    and accuracy, of binary decisions against binary outcomes.

    ``groups`` holds each row's group, or its code from :func:`pandas.factorize` (``-1``: in none).
    """
    codes = groups if isinstance(groups, np.ndarray) else pd.factorize(groups)[0]
    accuracy = float(np.mean(decisions == positives))
    grouped = codes >= 0
    sizes = np.bincount(codes[grouped])
    approved = np.bincount(codes[grouped], weights=decisions[grouped], minlength=len(sizes))
    large = sizes >= min_group_size
    if large.sum() < 2:
        return None, accuracy
    rates = approved[large] / sizes[large]
    low, high = float(rates.min()), float(rates.max())
    if metric == "demographic_parity_difference":
        return high - low, accuracy
    return (low / high if high else None), accuracy


def permutation_sensitivity(
    frame: pd.DataFrame,
    model: Any,
    features: Sequence[str],
    *,
    positives: np.ndarray,
    groups: pd.Series,
    threshold: float,
    metric: str,
    min_group_size: int,
    repeats: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    logit_terms: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Change of the disparity and of accuracy when each feature is permuted.

    ``progress``, when given, hears of each feature as it starts (``feature 3/15 (age): ...``).

    ``logit_terms``, when given, holds each row's log-odds (column ``_logit``) and each feature's
    additive term of it (a column per feature), as the scorecard's SQL gives them: permuting a
    feature's values then permutes its term, and the rows are re-scored without calling the model.
    The same seed draws the same permutations either way.

    Returns:
        Rows ``feature, metric ('disparity'/'accuracy'), baseline, mean_change, abs_mean_change,
        std_change, repeats, rank``.
    """
    from scipy.special import expit

    features = list(features)
    codes = pd.factorize(groups)[0]

    def measure(scores: np.ndarray) -> tuple[float | None, float]:
        return disparity_and_accuracy(
            (scores >= threshold).astype(int),
            positives,
            codes,
            metric=metric,
            min_group_size=min_group_size,
        )

    def rescored(feature: str | None, order: np.ndarray | None) -> np.ndarray:
        if logit_terms is not None:
            logit = logit_terms["_logit"].to_numpy()
            if feature is not None:
                term = logit_terms[feature].to_numpy()
                logit = logit - term + term[order]
            return expit(logit)
        rows = frame[features]
        if feature is not None:
            rows = rows.copy()
            rows[feature] = rows[feature].to_numpy()[order]
        return model.predict_proba(rows)[:, 1]

    base_gap, base_accuracy = measure(rescored(None, None))
    rng = np.random.default_rng(seed)
    out = []
    for position, feature in enumerate(features, start=1):
        if progress is not None:
            progress(f"feature {position}/{len(features)} ({feature}): {repeats} permutations")
        gaps, accuracies = [], []
        for _ in range(repeats):
            gap, accuracy = measure(rescored(feature, rng.permutation(len(frame))))
            gaps.append(np.nan if gap is None or base_gap is None else gap - base_gap)
            accuracies.append(accuracy - base_accuracy)
        for name, base, changes in (
            ("disparity", base_gap, np.array(gaps, dtype=float)),
            ("accuracy", base_accuracy, np.array(accuracies, dtype=float)),
        ):
            defined = not np.isnan(changes).any()
            mean = float(changes.mean()) if defined else None
            out.append(
                {
                    "feature": feature,
                    "metric": name,
                    "baseline": base,
                    "mean_change": mean,
                    "abs_mean_change": abs(mean) if mean is not None else None,
                    "std_change": float(changes.std(ddof=1)) if defined else None,
                    "repeats": repeats,
                }
            )
    result = pd.DataFrame(out)
    result["rank"] = (
        result.groupby("metric")["abs_mean_change"]
        .rank(ascending=False, method="min")
        .astype("Int64")
    )
    return result


def group_keys(frame: pd.DataFrame, columns: Sequence[str], missing: str) -> pd.Series:
    """Each row's group in a feature set: its values joined as in the group metrics."""
    parts = [frame[c].astype("string").fillna(missing) for c in columns]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + INTERSECTION_SEPARATOR + part
    return keys
