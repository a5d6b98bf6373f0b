"""Scenario testing: a partition's decisions re-evaluated under what-ifs, side by side with the baseline.

Each scenario is a relation derived from the partition's scored rows, evaluated by the same query as
the baseline (:func:`compute_kpis` with the selection rate), plus demographic parity between the groups
of each feature set:

* ``threshold_sweep``: the decision re-made at each threshold on the score (exact: a threshold equal to
  the model's reproduces the baseline);
* ``feature_shift``: the model re-scores the partition with a feature changed (``multiply``, ``add``);
  the rows come from the caller, which holds the model;
* ``group_mix``: rows of the named groups weighted up or down, the total weight unchanged;
* ``base_rate``: positive outcomes weighted by ``factor`` and negative ones so that the total is
  unchanged, i.e. the base rate multiplied by ``factor``.

Reweighted scenarios evaluate cost-benefit and selection rates weighted; the spec's own KPIs are SQL
aggregates without a weighted form, so they are reported for the scenarios that change the rows.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd

from impact_assets.analytics._kpis import compute_kpis
from impact_assets.spec import OVERALL, AssessmentSpec, ScenarioSpec
from impact_assets.sql import ident, literal, with_columns_replaced

__all__ = ["DISPARITY_RESULTS", "evaluate_scenarios"]

DISPARITY_RESULTS = ("demographic_parity_difference", "demographic_parity_ratio")
BASE_RATE_TOO_HIGH = "a base rate of {rate:.4f} times {factor:g} exceeds 1"


def _outcomes(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    weight: str | None = None,
) -> pd.DataFrame:
    frame = compute_kpis(
        conn, relation, spec, partition_key, weight=weight, selection_rate=True
    ).rename(columns={"kpi": "metric"})
    rates = frame[(frame["metric"] == "selection_rate") & (frame["feature_set"] != OVERALL)]
    gaps = []
    for feature_set, rows in rates.groupby("feature_set"):
        values = rows.loc[~rows["suppressed"] & rows["value"].notna(), "value"]
        enough = len(values) >= 2
        high, low = (values.max(), values.min()) if enough else (None, None)
        for metric, value in zip(
            DISPARITY_RESULTS,
            (high - low if enough else None, (low / high if high else None) if enough else None),
            strict=True,
        ):
            gaps.append(
                {
                    "metric": metric,
                    "kind": "fairness",
                    "feature_set": feature_set,
                    "group_key": OVERALL,
                    "value": value,
                    "n": int(rows["n"].sum()),
                    "suppressed": False,
                    "reason": None if enough else "fewer than two groups above the minimum size",
                }
            )
    return pd.concat([frame, pd.DataFrame(gaps)], ignore_index=True)


def _rows(relation: str, spec: AssessmentSpec, partition_key: str, extra: str = "") -> str:
    column = ident(spec.bindings.partition_column)
    return (
        f"(SELECT *{extra} FROM {relation} "
        f"WHERE CAST({column} AS DATE) = CAST({literal(partition_key)} AS DATE))"
    )


def _negative_decision(conn: duckdb.DuckDBPyConnection, relation: str, spec: AssessmentSpec) -> str:
    positive = spec.model.positive_label
    decision = ident(spec.bindings.prediction)
    found = conn.execute(  # any one: LIMIT stops the scan at the first
        f"SELECT {decision} FROM {relation} WHERE CAST({decision} AS VARCHAR) <> ? LIMIT 1",
        [str(positive)],
    ).fetchall()
    if found:
        value = found[0][0]
        return literal(value) if isinstance(value, str) else repr(value)
    return repr(1 - positive) if positive in (0, 1) else "NULL"


def evaluate_scenarios(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    *,
    rescored: Callable[[ScenarioSpec], str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every scenario of the spec on one partition, with the baseline value of each result.

    Args:
        relation: The scored table.
        rescored: For ``feature_shift`` scenarios: a relation of the partition's scored rows with the
            score and decision the model gives after the shift.
        progress: Hears of each scenario as it starts (``scenario 2/4 (recession, base_rate)``).

    Returns:
        Long frame: ``scenario, kind, variant, metric, feature_set, group_key, value, baseline, n,
        suppressed, reason``.
    """
    bindings = spec.bindings
    rows = _rows(relation, spec, partition_key)
    baseline = _outcomes(conn, rows, spec, partition_key)
    keyed = baseline.set_index(["metric", "feature_set", "group_key"])["value"]
    out = []

    def add(scenario: ScenarioSpec, variant: str, frame: pd.DataFrame) -> None:
        frame = frame.assign(scenario=scenario.name, kind=scenario.kind, variant=variant)
        frame["baseline"] = [
            keyed.get((m, f, g))
            for m, f, g in zip(frame.metric, frame.feature_set, frame.group_key, strict=True)
        ]
        out.append(frame)

    scenarios = spec.analytics.scenarios
    for position, scenario in enumerate(scenarios, start=1):
        if progress is not None:
            progress(f"scenario {position}/{len(scenarios)} ({scenario.name}, {scenario.kind})")
        if scenario.kind == "threshold_sweep":
            positive = spec.model.positive_label
            negative = _negative_decision(conn, rows, spec)
            for threshold in scenario.thresholds:
                decision = (
                    f"CASE WHEN {ident(bindings.score)} >= {threshold!r} "
                    f"THEN {literal(positive) if isinstance(positive, str) else positive!r} ELSE {negative} END"
                )
                decided = with_columns_replaced(
                    conn, rows, {bindings.prediction: decision}, tail="AS _rows"
                )
                add(scenario, f"{threshold:g}", _outcomes(conn, decided, spec, partition_key))
        elif scenario.kind == "feature_shift":
            if rescored is None:
                raise ValueError(f"scenario {scenario.name!r} needs the model to re-score the rows")
            add(scenario, "", _outcomes(conn, rescored(scenario), spec, partition_key))
        elif scenario.kind == "group_mix":
            column = ident(scenario.feature or "")
            cases = " ".join(
                f"WHEN CAST({column} AS VARCHAR) = {literal(g)} THEN {w!r}"
                for g, w in scenario.weights.items()
            )
            raw = f"CASE {cases} ELSE 1.0 END"
            weighted = _rows(
                relation, spec, partition_key, f", {raw} / avg({raw}) OVER () AS _weight"
            )
            add(scenario, "", _outcomes(conn, weighted, spec, partition_key, weight="_weight"))
        else:  # base_rate
            positive = literal(str(spec.model.positive_label))
            label = f"CAST({ident(bindings.label)} AS VARCHAR) = {positive}"
            rate = conn.execute(f"SELECT avg(CAST({label} AS DOUBLE)) FROM {rows}").fetchall()[0][0]
            factor = scenario.factor or 1.0
            if rate is None or rate * factor > 1 or rate >= 1:
                why = BASE_RATE_TOO_HIGH.format(rate=rate or 0.0, factor=factor)
                add(scenario, "", baseline.assign(value=None, reason=why))
                continue
            other = (1 - factor * rate) / (1 - rate)
            weighted = _rows(
                relation,
                spec,
                partition_key,
                f", CASE WHEN {label} THEN {factor!r} ELSE {other!r} END AS _weight",
            )
            add(scenario, "", _outcomes(conn, weighted, spec, partition_key, weight="_weight"))
    if not out:
        return pd.DataFrame()
    columns = [
        "scenario",
        "kind",
        "variant",
        "metric",
        "feature_set",
        "group_key",
        "value",
        "baseline",
        "n",
        "suppressed",
        "reason",
    ]
    return pd.concat(out, ignore_index=True)[columns]
