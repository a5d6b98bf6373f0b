"""Cohorts of decisions whose outcomes are awaited together, when they mature, and whose
outcomes are known so far (label coverage by group).

A cohort is the decisions of one window of days: a day, an ISO week (Monday to Sunday), a calendar
month or a calendar year (a year of historic decisions assessed as one population). It matures a
declared number of days after its last day; before that its outcome-based measures are awaited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import duckdb
import pandas as pd

from impact_assets.fairness import group_key_sql, intersection_key
from impact_assets.spec import OVERALL, Bindings
from impact_assets.sql import ident

__all__ = ["CohortWindow", "cohort_of", "label_coverage"]

Window = Literal["day", "week", "month", "year"]


@dataclass(frozen=True)
class CohortWindow:
    """The days of a cohort, first and last included."""

    window: Window
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        """``2026-03-02`` (day), ``2026-W10`` (ISO week), ``2026-03`` (month), ``2026`` (year)."""
        if self.window == "day":
            return self.start.isoformat()
        if self.window == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.window == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        return str(self.start.year)

    def matures_on(self, maturity_days: int) -> dt.date:
        """The first day on which every decision of the cohort is ``maturity_days`` old."""
        return self.end + dt.timedelta(days=maturity_days)

    def is_mature(self, today: dt.date, maturity_days: int) -> bool:
        return today >= self.matures_on(maturity_days)


def cohort_of(day: dt.date, window: Window) -> CohortWindow:
    """The cohort a decision of ``day`` belongs to.

    Example:
        >>> c = cohort_of(dt.date(2026, 3, 4), "week")
        >>> c.key, c.start.isoformat(), c.end.isoformat(), c.matures_on(90).isoformat()
        ('2026-W10', '2026-03-02', '2026-03-08', '2026-06-06')
    """
    if window == "day":
        return CohortWindow(window, day, day)
    if window == "week":
        start = day - dt.timedelta(days=day.weekday())
        return CohortWindow(window, start, start + dt.timedelta(days=6))
    if window == "month":
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return CohortWindow(window, start, following - dt.timedelta(days=1))
    if window == "year":
        return CohortWindow(window, day.replace(month=1, day=1), day.replace(month=12, day=31))
    raise ValueError(f"unknown cohort window {window!r}: day, week, month or year")


def label_coverage(
    conn: duckdb.DuckDBPyConnection,
    decisions: str,
    outcomes: str | None,
    bindings: Bindings,
    cohort: CohortWindow,
    *,
    outcome_id: str | None = None,
    outcome_label: str | None = None,
    observed_for: Literal["all", "positive_decisions"] = "all",
    positive_label: int | str = 1,
    feature_sets: Mapping[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Whose outcomes are known: per group of each feature set, the cohort's decisions, those whose
    outcome can ever be observed (all, or only the positive decisions when outcomes exist only for
    approved cases), those with an outcome recorded, and the coverage (recorded / observable).

    Args:
        decisions: Quoted relation of the scored decisions (``bindings`` name its columns).
        outcomes: Quoted relation of the outcomes, one row per decision id; ``None``: the outcome is
            the decisions' own ``bindings.label`` (NULL until known).
        outcome_id: Column of ``outcomes`` holding the decision's id.
        outcome_label: Column of ``outcomes`` holding the outcome.
        observed_for: ``positive_decisions``: only positive decisions can have an outcome.

    Returns:
        Columns ``feature_set, group_key, decisions, observable, labelled, coverage``; coverage is
        NaN for a group with no observable decision.
    """
    feature_sets = bindings.feature_sets if feature_sets is None else feature_sets
    features = {f.name: f for f in bindings.sensitive_features}
    used = sorted({f for members in feature_sets.values() for f in members})
    if observed_for == "all":
        observable, marks = "TRUE", []
    else:  # the condition appears in both filters below, so its value is passed twice
        observable = f"CAST(d.{ident(bindings.prediction)} AS VARCHAR) = CAST(? AS VARCHAR)"
        marks = [str(positive_label)] * 2
    keys = ", ".join(
        f"{group_key_sql(features[name], qualifier='d.')} AS {ident('_g_' + name)}" for name in used
    )
    if outcomes is None:
        known, joined = f"d.{ident(bindings.label)}", ""
    else:
        known = f"o.{ident(outcome_label or bindings.label)}"
        joined = f"LEFT JOIN {outcomes} AS o ON o.{ident(outcome_id or bindings.id_column)} = d.{ident(bindings.id_column)}"
    rows = conn.execute(
        f"""SELECT {keys + ", " if keys else ""}count(*) AS decisions,
                   count(*) FILTER (WHERE {observable}) AS observable,
                   count(*) FILTER (WHERE {observable} AND {known} IS NOT NULL) AS labelled
            FROM {decisions} AS d {joined}
            WHERE CAST(d.{ident(bindings.partition_column)} AS DATE) BETWEEN ? AND ?
            GROUP BY ALL""",
        [*marks, cohort.start, cohort.end],
    ).df()
    counts = ["decisions", "observable", "labelled"]
    frames = []
    for name, members in feature_sets.items():
        if members:
            by = rows.groupby([f"_g_{m}" for m in members], observed=True)[counts].sum()
            labels = [intersection_key(k) for k in by.index]
        else:
            by, labels = rows[counts].sum().to_frame().T, [OVERALL]
        frames.append(by.reset_index(drop=True).assign(feature_set=name, group_key=labels))
    out = pd.concat(frames, ignore_index=True)
    out["coverage"] = out["labelled"] / out["observable"].where(out["observable"] > 0)
    return out[["feature_set", "group_key", *counts, "coverage"]].astype(
        {c: "int64" for c in counts}
    )
