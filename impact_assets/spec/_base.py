"""What every spec model shares: the frozen, strict base model, identifier and text types, and the
metric vocabulary (group metrics, disparities, the ``overall`` group).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, get_args

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
)

#: Name of the feature set and group that stand for all rows.
OVERALL = "overall"

#: Separator of feature names in an intersection's name and of values in its group keys.
INTERSECTION_SEPARATOR = "×"

#: Metrics of the decisions (from the confusion cells), by fairlearn's or scikit-learn's names.
DECISION_METRICS: tuple[str, ...] = (
    "base_rate",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "true_negative_rate",
    "precision",
    "negative_predictive_value",
    "accuracy",
    "balanced_accuracy",
    "f1",
)

#: Metrics of the score (need ``bindings.score``).
SCORE_METRICS: tuple[str, ...] = ("auc", "brier_score", "expected_calibration_error")

#: Group metrics (``count`` is the number of rows in the group).
GROUP_METRICS: tuple[str, ...] = ("count", *DECISION_METRICS, *SCORE_METRICS)

#: fairlearn's named disparities: demographic parity (selection rate), equal opportunity (TPR) and
#: equalized odds (the worse of TPR and FPR).
NAMED_DISPARITIES: tuple[str, ...] = ("demographic_parity", "equal_opportunity", "equalized_odds")

#: Metrics whose disparity across groups is reported.
DISPARITY_METRICS: tuple[str, ...] = (*DECISION_METRICS, *SCORE_METRICS, *NAMED_DISPARITIES)

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]

NonEmptyText = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]

#: What a register entry's breach calls for, most severe first.
ActionType = Literal["rollback", "block_release", "review", "notify"]
ACTION_TYPES: tuple[str, ...] = get_args(ActionType)


def intersection_name(features: tuple[str, ...] | list[str]) -> str:
    """Name of the feature set of an intersection, e.g. ``sex×age_band``."""
    return INTERSECTION_SEPARATOR.join(features)


def _cron(text: str) -> str:
    try:
        CronSim(text, dt.datetime(2026, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"{text!r} is not a cron expression: {exc}") from None
    return text


Cron = Annotated[str, AfterValidator(_cron)]


class SpecModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,  # a field's docstring is its description in the JSON Schema
    )
