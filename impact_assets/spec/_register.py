"""The impact register: entries, the metric each one measures, and its thresholds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import (
    DISPARITY_METRICS,
    GROUP_METRICS,
    OVERALL,
    ActionType,
    Identifier,
    NonEmptyText,
    SpecModel,
)
from impact_assets.spec._outcomes import LabelCoverageRef


class Thresholds(SpecModel):
    """When a value warns or breaches. ``higher_is_better``: breach below ``breach``, warn below ``warn``."""

    direction: Literal["higher_is_better", "lower_is_better"]
    """Whether higher or lower values are better."""
    warn: float | None = None
    """Beyond it (on the bad side) the entry is `warn`."""
    breach: float
    """Beyond it (on the bad side) the entry is `breach`."""
    decide_on: Literal["value", "interval"] = Field(
        default="value",
        description="`interval`: escalate only when the whole confidence interval lies beyond a threshold; a point estimate beyond `breach` whose interval is not wholly beyond it is a `warn`.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.warn is not None:
            if self.direction == "higher_is_better" and self.warn < self.breach:
                raise ValueError(
                    f"with direction higher_is_better, warn ({self.warn}) must be >= breach ({self.breach})"
                )
            if self.direction == "lower_is_better" and self.warn > self.breach:
                raise ValueError(
                    f"with direction lower_is_better, warn ({self.warn}) must be <= breach ({self.breach})"
                )
        return self


class GroupMetricRef(SpecModel):
    """A group metric: one group of one feature set (``overall``/``overall`` for all rows)."""

    source: Literal["group_metric"]
    """Evaluates a metric of one group (or overall)."""
    metric: Literal[GROUP_METRICS]  # type: ignore[valid-type]
    """The group metric."""
    feature_set: str = OVERALL
    """Sensitive feature or intersection; `overall` for all rows."""
    group: str = OVERALL
    """Group of the feature set (e.g. `female×<25`); `overall` for all rows."""


class DisparityRef(SpecModel):
    """A disparity of a metric across the groups of one feature set, with fairlearn's semantics."""

    source: Literal["disparity"]
    """Evaluates a disparity between groups."""
    metric: Literal[DISPARITY_METRICS]  # type: ignore[valid-type]
    """Group metric compared, or `demographic_parity`, `equal_opportunity`, `equalized_odds`."""
    feature_set: str
    """Sensitive feature or intersection (e.g. `sex×age_band`)."""
    method: Literal["difference", "ratio"]
    """`difference` (largest gap) or `ratio` (smallest over largest), as fairlearn."""
    relative_to: str = Field(
        default="between_groups",
        description="`between_groups`, `to_overall`, or a reference group declared in `fairness.reference_groups`.",
    )


class QualityRef(SpecModel):
    """A data-quality result: one check on one table (its latest evaluation on the partition)."""

    source: Literal["quality"]
    """Evaluates the latest result of a data-quality check."""
    table: str
    """Table the check runs on."""
    check: str
    """Name of the asset check (e.g. `repaid_values_are_not_null`)."""
    metric: Literal["unexpected_percent", "unexpected_count", "observed_value", "success"] = (
        "unexpected_percent"
    )
    """Which number of the result."""
    feature_set: str = OVERALL
    """Only `overall`: checks run on whole partitions."""


class KpiRef(SpecModel):
    """A KPI or cost-benefit result (``net_benefit``, ``value_fp``...) of one group of one feature set."""

    source: Literal["kpi"]
    """Evaluates a KPI or cost-benefit result."""
    kpi: str
    """Name of a KPI, or a cost-benefit result (`net_benefit`, `net_benefit_per_decision`, `value_tp`...)."""
    feature_set: str = OVERALL
    """Sensitive feature or intersection; `overall` for all rows."""
    group: str = OVERALL
    """Group of the feature set; `overall` for all rows."""


class DriftRef(SpecModel):
    """A drift statistic of one column against the reference snapshot."""

    source: Literal["drift"]
    """Evaluates a drift statistic."""
    column: str
    """Column of the scored table (a feature, the score, the label or a sensitive feature)."""
    statistic: Literal[
        "psi", "ks", "ks_pvalue", "chi_square", "chi_square_pvalue", "js_distance"
    ] = "psi"
    """Which statistic of the column."""


class ScenarioRef(SpecModel):
    """A result of a scenario: a KPI, cost-benefit result, selection rate or demographic parity."""

    source: Literal["scenario"]
    """Evaluates a scenario result."""
    scenario: str
    """Name of an `analytics.scenarios` entry."""
    variant: str = Field(
        default="", description="For a threshold sweep: the threshold, e.g. `0.4`."
    )
    metric: str
    """Result of the scenario (a rate, a KPI or a disparity, e.g. `demographic_parity_ratio`)."""
    feature_set: str = OVERALL
    """Sensitive feature or intersection; `overall` for all rows."""
    group: str = OVERALL
    """Group of the feature set; `overall` for all rows."""


class SensitivityRef(SpecModel):
    """How much permuting one feature changes the watched disparity (or accuracy), on average."""

    source: Literal["sensitivity"]
    """Evaluates a sensitivity result."""
    feature: str
    """Model feature permuted."""
    metric: Literal["disparity", "accuracy"] = "disparity"
    """Change of the watched `disparity` or of `accuracy`."""
    statistic: Literal["mean_change", "abs_mean_change"] = "abs_mean_change"
    """`mean_change` or `abs_mean_change` over the repeats."""


class CausalRef(SpecModel):
    """A causal estimate (the effect, with its interval; no value when the pre-trend check fails)."""

    source: Literal["causal"]
    """Evaluates a causal estimate."""
    estimate: str
    """Name of an `analytics.causal` estimate."""


MetricRef = Annotated[
    GroupMetricRef
    | DisparityRef
    | QualityRef
    | KpiRef
    | DriftRef
    | ScenarioRef
    | SensitivityRef
    | CausalRef
    | LabelCoverageRef,
    Field(discriminator="source"),
]


class RegisterEntry(SpecModel):
    """One anticipated outcome of the model, how it is measured and what a breach triggers."""

    id: Identifier
    """Identifier of the entry; its asset check on the register snapshot has the same name."""
    outcome: NonEmptyText = Field(description="The anticipated outcome, in plain language.")
    stakeholder: Identifier
    """Who is affected: an `id` of `stakeholders`."""
    impact: Literal["harm", "benefit"]
    """Whether the outcome is a harm to avoid or a benefit to keep."""
    measure: MetricRef
    """The result that measures the outcome; `source` picks its kind."""
    thresholds: Thresholds
    """When the value is a warning or a breach."""
    owner: NonEmptyText
    """Who owns the governance actions the entry opens."""
    escalate_to: NonEmptyText | None = None
    """Who an overdue or repeatedly breached action escalates to."""
    action: ActionType = "review"
    """Action a breach opens: `notify`, `review`, `block_release` (holds the release) or `rollback`."""
    frameworks: tuple[str, ...] = ()
    """Free-text tags of the rules the entry serves (e.g. `EU AI Act Annex III 5(b)`)."""
    warn_on_estimate: bool = Field(
        default=False,
        description="An outcome-based entry whose cohort awaits its outcomes is `warn` when the estimate crosses a threshold (never `pass` or `breach` on an estimate).",
    )
