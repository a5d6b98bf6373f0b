"""Data-quality expectations per table and the freshness of the sources."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
)

from impact_assets.spec._base import Cron, Identifier, NonEmptyText, SpecModel


class ExpectationSpec(SpecModel):
    """One Great Expectations 1.x expectation on a table, by its snake_case name and arguments."""

    expectation: NonEmptyText = Field(
        description="GX name, e.g. `expect_column_values_to_be_between`."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="The expectation's arguments (`column`, `min_value`, `value_set`, `mostly`...).",
    )
    severity: Literal["warn", "error"] = "error"
    """Severity of the asset check when it fails."""
    blocking: bool = Field(
        default=False,
        description="A failure with severity `error` stops fairness metrics and register evaluation for the partition.",
    )
    name: Identifier | None = Field(
        default=None,
        description="Asset check name; derived from the expectation and column when omitted.",
    )


class FreshnessSpec(SpecModel):
    """When data must arrive: Dagster's freshness policy of the raw sources and the predictions, and the
    per-partition `batch_is_fresh` check of every source with a `loaded_at_column`.

    A day's batch is fresh when every row was loaded after the window of the deadline that follows the
    day opened: no earlier than ``lower_bound_hours`` before that deadline (the semantics of Dagster's
    cron freshness policy, applied to the batch's own load times).
    """

    deadline_cron: Cron = Field(
        default="0 3 * * *", description="When each day's data must have arrived."
    )
    lower_bound_hours: int = Field(
        default=24,
        ge=1,
        le=24,
        description="How recent, before the deadline, the last update must be.",
    )
    severity: Literal["warn", "error"] = "warn"
    """Severity of the freshness check."""
    blocking: bool = Field(
        default=False, description="A stale batch stops fairness metrics and the register."
    )


class QualitySpec(SpecModel):
    """Data-quality expectations per table (SQL model, source or `predictions`), evaluated per partition."""

    defaults: bool = Field(
        default=True,
        description="Add the expectations derived from the bindings (binary label and decision, score in [0, 1], declared groups, non-empty partition).",
    )
    tables: dict[str, tuple[ExpectationSpec, ...]] = Field(default_factory=dict)
    """Table (SQL model, source or `predictions`) to its expectations."""
    freshness: FreshnessSpec | None = FreshnessSpec()
    """The `batch_is_fresh` check of sources with a `loaded_at_column`; null turns it off."""
