"""Evaluating register entries against the results of a partition.

A register entry's ``measure`` names a result source and the values of its key columns. Each source
is a long table of results (``group_metrics``, ``disparities``; later ones plug in the same way), so
resolving a reference is a lookup of one row, whatever the source.

Status rules (``higher_is_better``; mirrored for ``lower_is_better``):

* no row, or a NULL value           -> ``insufficient_data`` (the reason says why)
* the group is below the minimum    -> ``suppressed``
* value < breach                    -> ``breach``
* value < warn                      -> ``warn``
* otherwise                         -> ``pass``

An entry that needs outcomes (see :func:`impact_assets.outcomes.needs_outcomes`) is evaluated on its
partition's cohort (:func:`evaluate_awaited`): on the realised results once the cohort has matured,
else it is ``awaiting_outcomes``, with the estimate where one is made (``warn`` when the entry opts in
with ``warn_on_estimate`` and the estimate crosses a threshold; never ``pass`` or ``breach``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from impact_assets.spec import MetricRef, RegisterEntry, Thresholds

__all__ = [
    "RESULT_SOURCES",
    "STATUSES",
    "CohortState",
    "EntryResult",
    "blocked_register",
    "describe_ref",
    "evaluate_awaited",
    "evaluate_entry",
    "evaluate_register",
    "status_for",
]

#: The statuses of a register entry, most severe first (the order reports list entries in).
STATUSES = ("breach", "warn", "insufficient_data", "awaiting_outcomes", "suppressed", "pass")

NO_RESULT = "no {source} result matches {where} for this partition"
BLOCKED = "not evaluated: {why}"
AWAITING = "awaiting outcomes: cohort {cohort} matures on {matures_on} (outcomes known for {coverage} of its observable decisions)"
ESTIMATED = "; estimated {value:.4g} [{low:.4g}, {high:.4g}] from calibrated scores"
ESTIMATED_ALONE = "; estimated {value:.4g} from calibrated scores (no interval)"
WARNED = "; the estimate says: {why}"
CONTRACT = "not evaluated: the outcomes of cohort {cohort} break their contract: {why}"

#: Result source of each reference kind: the table it lives in and how reference fields map to its key columns.
RESULT_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "group_metric": (
        "group_metrics",
        {"metric": "metric", "feature_set": "feature_set", "group": "group_key"},
    ),
    "disparity": (
        "disparities",
        {
            "metric": "metric",
            "feature_set": "feature_set",
            "method": "method",
            "relative_to": "relative_to",
        },
    ),
    "quality": ("quality_results", {"table": "table_name", "check": "check_name"}),
    "kpi": ("kpis", {"kpi": "kpi", "feature_set": "feature_set", "group": "group_key"}),
    "drift": ("drift", {"column": "column_name", "statistic": "statistic"}),
    "sensitivity": ("sensitivity", {"feature": "feature", "metric": "metric"}),
    "causal": ("causal_estimates", {"estimate": "name"}),
    "label_coverage": ("label_coverage", {"feature_set": "feature_set", "group": "group_key"}),
    "scenario": (
        "scenarios",
        {
            "scenario": "scenario",
            "variant": "variant",
            "metric": "metric",
            "feature_set": "feature_set",
            "group": "group_key",
        },
    ),
}
#: Sources whose value column is named by the reference's ``metric`` rather than ``value``.
VALUE_FROM_METRIC = frozenset({"quality"})


@dataclass(frozen=True)
class EntryResult:
    """What a register entry measured in one partition and what that means."""

    entry_id: str
    metric_ref: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str
    reason: str
    basis: str | None = None
    cohort_key: str | None = None
    matures_on: dt.date | None = None


@dataclass(frozen=True)
class CohortState:
    """What is known of a partition's cohort: whether it matured, its realised and estimated result
    tables (keyed as :data:`RESULT_SOURCES`), and a broken outcomes contract."""

    cohort_key: str
    matured: bool
    matures_on: dt.date
    coverage: float | None
    realised: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    estimated: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    violation: str | None = None


def describe_ref(ref: MetricRef) -> str:
    """Stable JSON text of a reference, stored with every evaluation."""
    return json.dumps(ref.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


def status_for(
    value: float, thresholds: Thresholds, ci: tuple[float | None, float | None] = (None, None)
) -> tuple[str, str]:
    """Status and reason of a measured value against its thresholds.

    With ``decide_on: interval``, a threshold counts as crossed only when the whole confidence
    interval lies beyond it; a point estimate beyond ``breach`` with an interval reaching back over it
    is a ``warn`` (inconclusive breach), one beyond ``warn`` only is a ``pass``.
    """
    sign = 1 if thresholds.direction == "higher_is_better" else -1
    worse = "below" if sign == 1 else "above"
    beyond_breach = sign * value < sign * thresholds.breach
    beyond_warn = thresholds.warn is not None and sign * value < sign * thresholds.warn
    if thresholds.decide_on == "interval" and (beyond_breach or beyond_warn):
        low, high = ci
        if low is None or high is None:
            return (
                "insufficient_data",
                f"{value:.4g} crosses a threshold but has no confidence interval to decide on",
            )
        best = high if sign == 1 else low  # the end of the interval closest to passing
        interval = f"{value:.4g} [{low:.4g}, {high:.4g}]"
        if sign * best < sign * thresholds.breach:
            return (
                "breach",
                f"{interval}: the whole interval is {worse} the breach threshold {thresholds.breach:g}",
            )
        if thresholds.warn is not None and sign * best < sign * thresholds.warn:
            return (
                "warn",
                f"{interval}: the whole interval is {worse} the warn threshold {thresholds.warn:g}",
            )
        if beyond_breach:
            return (
                "warn",
                f"{interval}: the estimate is {worse} the breach threshold {thresholds.breach:g} but the interval reaches over it",
            )
        return (
            "pass",
            f"{interval}: the estimate is {worse} the warn threshold {thresholds.warn:g} but the interval reaches over it",
        )
    if beyond_breach:
        return "breach", f"{value:.4g} is {worse} the breach threshold {thresholds.breach:g}"
    if beyond_warn:
        return "warn", f"{value:.4g} is {worse} the warn threshold {thresholds.warn:g}"
    return (
        "pass",
        f"{value:.4g} is within thresholds ({thresholds.direction}, breach {thresholds.breach:g})",
    )


def _lookup(ref: MetricRef, results: Mapping[str, pd.DataFrame]) -> tuple[pd.Series | None, str]:
    table, keys = RESULT_SOURCES[ref.source]
    frame = results.get(table)
    where = {column: getattr(ref, field) for field, column in keys.items()}
    if frame is None or frame.empty:
        return None, NO_RESULT.format(source=table, where=where)
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    rows = frame[mask]
    if rows.empty:
        return None, NO_RESULT.format(source=table, where=where)
    return rows.iloc[0], ""


def _optional(row: pd.Series, column: str) -> float | None:
    if column not in row.index:
        return None
    value = row[column]
    return (
        None
        if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)
        else float(value)
    )


def evaluate_entry(entry: RegisterEntry, results: Mapping[str, pd.DataFrame]) -> EntryResult:
    """Evaluate one entry against result tables keyed by name (``group_metrics``, ``disparities``)."""
    ref = entry.measure
    row, missing = _lookup(ref, results)
    text = describe_ref(ref)
    if row is None:
        return EntryResult(entry.id, text, None, None, None, None, "insufficient_data", missing)
    n = int(row["n"]) if "n" in row.index and not pd.isna(row["n"]) else None
    if ref.source in VALUE_FROM_METRIC:
        n = int(row["element_count"]) if not pd.isna(row.get("element_count")) else None
        raw = row.get(ref.metric)
        value = (
            float(bool(raw))
            if ref.metric == "success"
            else _optional(pd.Series({"v": pd.to_numeric(raw, errors="coerce")}), "v")
        )
    elif ref.source == "sensitivity":
        value = _optional(row, ref.statistic)
    elif ref.source == "label_coverage":
        value, n = _optional(row, "coverage"), int(row["observable"])
    else:
        value = _optional(row, "value")
    ci_low, ci_high = _optional(row, "ci_low"), _optional(row, "ci_high")
    reason = row.get("reason")
    if bool(row.get("suppressed", False)):
        return EntryResult(entry.id, text, None, None, None, n, "suppressed", str(reason))
    if value is None:
        return EntryResult(
            entry.id, text, None, None, None, n, "insufficient_data", str(reason or "no value")
        )
    status, why = status_for(value, entry.thresholds, (ci_low, ci_high))
    return EntryResult(entry.id, text, value, ci_low, ci_high, n, status, why)


def evaluate_awaited(
    entry: RegisterEntry, results: Mapping[str, pd.DataFrame], cohort: CohortState
) -> EntryResult:
    """Evaluate an entry that needs outcomes on its partition's cohort (see the module's rules)."""
    where = {"cohort_key": cohort.cohort_key, "matures_on": cohort.matures_on}
    if cohort.violation is not None:
        return EntryResult(
            entry.id,
            describe_ref(entry.measure),
            None,
            None,
            None,
            None,
            "insufficient_data",
            CONTRACT.format(cohort=cohort.cohort_key, why=cohort.violation),
            **where,
        )
    if cohort.matured:
        return replace(
            evaluate_entry(entry, {**results, **cohort.realised}), basis="realised", **where
        )
    coverage = "no" if cohort.coverage is None else f"{cohort.coverage:.1%}"
    reason = AWAITING.format(
        cohort=cohort.cohort_key, matures_on=cohort.matures_on.isoformat(), coverage=coverage
    )
    estimable = entry.measure.source in ("group_metric", "disparity") and cohort.estimated
    estimate = evaluate_entry(entry, {**results, **cohort.estimated}) if estimable else None
    if estimate is None or estimate.value is None or estimate.status == "suppressed":
        return EntryResult(
            entry.id,
            describe_ref(entry.measure),
            None,
            None,
            None,
            None,
            "awaiting_outcomes",
            reason,
            **where,
        )
    reason += (
        ESTIMATED.format(value=estimate.value, low=estimate.ci_low, high=estimate.ci_high)
        if estimate.ci_low is not None and estimate.ci_high is not None
        else ESTIMATED_ALONE.format(value=estimate.value)
    )
    status = "awaiting_outcomes"
    if entry.warn_on_estimate and estimate.status in ("warn", "breach"):
        status, reason = "warn", reason + WARNED.format(why=estimate.reason)
    return replace(estimate, status=status, reason=reason, basis="estimated", **where)


def evaluate_register(
    entries: tuple[RegisterEntry, ...], results: Mapping[str, pd.DataFrame]
) -> list[EntryResult]:
    """Evaluate every entry; see :func:`evaluate_entry`."""
    return [evaluate_entry(entry, results) for entry in entries]


def blocked_register(entries: tuple[RegisterEntry, ...], why: str) -> list[EntryResult]:
    """Every entry as ``insufficient_data`` because its inputs could not be trusted or computed."""
    return [
        EntryResult(
            e.id,
            describe_ref(e.measure),
            None,
            None,
            None,
            None,
            "insufficient_data",
            BLOCKED.format(why=why),
        )
        for e in entries
    ]
