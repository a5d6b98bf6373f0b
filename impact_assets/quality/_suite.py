"""Which expectations an assessment checks: the spec's own, and defaults derived from its bindings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim

from impact_assets.spec import AssessmentSpec, FreshnessSpec

__all__ = ["BATCH_IS_FRESH", "QualityCheck", "assessment_checks", "check_name", "fresh_after"]

#: Name of the derived check that a source's batch is fresh.
BATCH_IS_FRESH = "batch_is_fresh"
#: Placeholder of the freshness bound in the check's arguments, resolved per partition.
_FRESH_AFTER = "{fresh_after}"


@dataclass(frozen=True)
class QualityCheck:
    """One expectation on one table, as a Dagster asset check."""

    name: str
    table: str
    expectation: str
    kwargs: dict[str, Any] = field(hash=False)
    severity: str
    blocking: bool
    derived: bool

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    @property
    def kwargs_json(self) -> str:
        return json.dumps(self.kwargs, sort_keys=True, default=str, ensure_ascii=False)

    def for_partition(self, spec: AssessmentSpec, partition_key: str) -> QualityCheck:
        """The check with its partition-dependent arguments (the freshness bound) filled in."""
        if self.kwargs.get("min_value") != _FRESH_AFTER or spec.quality.freshness is None:
            return self
        bound = fresh_after(spec.quality.freshness, partition_key, spec.partitions.timezone)
        kwargs = {**self.kwargs, "min_value": bound.astimezone(dt.UTC).replace(tzinfo=None)}
        return dataclasses.replace(self, kwargs=kwargs)


def fresh_after(freshness: FreshnessSpec, partition_key: str, timezone: str) -> dt.datetime:
    """When the freshness window of a daily partition's batch opens.

    That is ``lower_bound_hours`` before the first deadline (``deadline_cron``, in the partitions'
    timezone) at or after the end of the day: with a 03:00 deadline and 24 hours, the batch of
    2026-03-02 must have been loaded after 2026-03-02 03:00.
    """
    zone = ZoneInfo(timezone)
    day_end = dt.datetime.combine(
        dt.date.fromisoformat(partition_key) + dt.timedelta(days=1), dt.time(), zone
    )
    deadline = next(iter(CronSim(freshness.deadline_cron, day_end - dt.timedelta(seconds=1))))
    return deadline - dt.timedelta(hours=freshness.lower_bound_hours)


_REWRITES = (
    (r"^expect_", ""),
    (r"^column_", ""),
    (r"_to_not_be_", "_are_not_"),
    (r"_to_be_", "_are_"),
    (r"_to_not_", "_do_not_"),
    (r"_to_", "_"),
)


def check_name(expectation: str, kwargs: dict[str, Any]) -> str:
    """A readable check name: ``expect_column_values_to_not_be_null`` on ``score`` -> ``score_values_are_not_null``."""
    text = expectation
    for pattern, replacement in _REWRITES:
        text = re.sub(pattern, replacement, text)
    text = text.replace("table_row_count_are_", "row_count_is_").replace(
        "_count_are_", "_count_is_"
    )
    column = kwargs.get("column")
    if column:
        text = f"{re.sub(r'[^a-z0-9_]', '_', str(column).lower())}_{text}"
    return text[:120]


def _derived(spec: AssessmentSpec) -> list[tuple[Any, ...]]:
    b = spec.bindings
    table = b.scored_table
    out: list[tuple[Any, ...]] = [
        (table, "expect_table_row_count_to_be_between", {"min_value": 1}, "error", True),
    ]
    for column in (b.label, b.prediction):
        if column == b.label and spec.outcomes is not None:
            continue  # outcomes arrive later: their own contract checks them, per cohort
        out.append(
            (table, "expect_column_values_to_not_be_null", {"column": column}, "error", True)
        )
        out.append(
            (
                table,
                "expect_column_unique_value_count_to_be_between",
                {"column": column, "max_value": 2},
                "error",
                True,
            )
        )
    if b.score is not None:
        out.append(
            (table, "expect_column_values_to_not_be_null", {"column": b.score}, "error", True)
        )
        out.append(
            (
                table,
                "expect_column_values_to_be_between",
                {"column": b.score, "min_value": 0, "max_value": 1},
                "error",
                True,
            )
        )
    for feature in b.sensitive_features:
        rejecting = b.missing_groups == "reject"
        out.append(
            (
                table,
                "expect_column_values_to_not_be_null",
                {"column": feature.name},
                "error" if rejecting else "warn",
                rejecting,
            )
        )
        if feature.values is not None:
            out.append(
                (
                    table,
                    "expect_column_values_to_be_in_set",
                    {"column": feature.name, "value_set": list(feature.values)},
                    "warn",
                    False,
                )
            )
    return out


def _freshness(spec: AssessmentSpec) -> list[tuple[Any, ...]]:
    """A ``batch_is_fresh`` check per source that declares when its rows were loaded.

    Every row of the partition must have been loaded after the window opened, so rows carried over from
    an older extract count as unexpected; an empty partition is the row-count check's to report.
    """
    fresh = spec.quality.freshness
    if fresh is None:
        return []
    return [
        (
            name,
            "expect_column_values_to_be_between",
            {"column": source.loaded_at_column, "min_value": _FRESH_AFTER},
            fresh.severity,
            fresh.blocking,
            BATCH_IS_FRESH,
        )
        for name, source in spec.sources.items()
        if source.loaded_at_column is not None
    ]


def assessment_checks(spec: AssessmentSpec) -> list[QualityCheck]:
    """The defaults (when enabled) followed by the spec's own expectations; names unique per table."""
    rows = [*(_derived(spec) if spec.quality.defaults else []), *_freshness(spec)]
    derived = len(rows)
    rows += [
        (table, e.expectation, dict(e.kwargs), e.severity, e.blocking, e.name)
        for table, items in spec.quality.tables.items()
        for e in items
    ]  # type: ignore[misc]
    checks: list[QualityCheck] = []
    taken: set[tuple[str, str]] = set()
    for i, row in enumerate(rows):
        table, expectation, kwargs, severity, blocking = row[:5]
        name = (row[5] if len(row) > 5 else None) or check_name(expectation, kwargs)
        base, k = name, 2
        while (table, name) in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add((table, name))
        checks.append(
            QualityCheck(name, table, expectation, kwargs, severity, blocking, derived=i < derived)
        )
    return checks
