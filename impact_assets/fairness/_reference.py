"""The fairlearn and scikit-learn functions the decision metrics equal: the reference the tests and
benchmarks run ``MetricFrame`` with. Imported on first use of ``impact_assets.fairness.METRIC_FUNCTIONS``
(fairlearn and scikit-learn take seconds to import, and no assessment step needs them)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from fairlearn.metrics import (
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_score

__all__ = ["METRIC_FUNCTIONS"]


def _base_rate(y_true, y_pred, *, sample_weight=None) -> float:
    return selection_rate(y_true, y_true, sample_weight=sample_weight)


#: The fairlearn/scikit-learn function each decision metric equals, as ``MetricFrame`` metrics.
METRIC_FUNCTIONS: dict[str, Callable[..., float]] = {
    "base_rate": _base_rate,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "true_negative_rate": true_negative_rate,
    "precision": functools.partial(precision_score, zero_division=np.nan),
    "negative_predictive_value": functools.partial(
        precision_score, pos_label=0, zero_division=np.nan
    ),
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1": functools.partial(f1_score, zero_division=np.nan),
}
