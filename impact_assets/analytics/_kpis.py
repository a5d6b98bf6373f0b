"""Business KPIs and cost-benefit of a partition's decisions, overall and per group, in two scans.

* The cells: one ``GROUP BY`` over the raw values of the sensitive features, the label and the decision
  gives each cell's rows, weight and, for outcome values written as SQL expressions, the sum of each
  outcome's value. The selection rate and the cost-benefit of every group of every feature set (overall,
  each sensitive feature, each intersection) are sums over cells, taken here.
* The spec's KPIs, arbitrary SQL aggregates: every feature set is one grouping set of a single
  ``GROUP BY GROUPING SETS`` query.

So ten million rows are read twice whatever the number of KPIs and groups. Groups smaller than the
minimum group size are reported suppressed (value NULL, reason stated), as for the fairness metrics.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from impact_assets.fairness import group_key, group_key_sql
from impact_assets.spec import INTERSECTION_SEPARATOR, OVERALL, AssessmentSpec
from impact_assets.sql import ident, literal

__all__ = ["compute_kpis"]

SUPPRESSED = "group of {n} rows is below the minimum group size {minimum}"
COLUMNS = ["kpi", "kind", "feature_set", "group_key", "value", "n", "suppressed", "reason"]
#: The outcome cells of cost-benefit: (y_true, y_pred) of each.
OUTCOMES = {"tp": (True, True), "fp": (False, True), "tn": (False, False), "fn": (True, False)}


def _cells(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    weight: str | None,
) -> pd.DataFrame:
    """Rows, weight and sums of the outcome values that are SQL expressions, per cell, with each
    sensitive feature's group key (``_g_<feature>``) and booleans ``_y_true``, ``_y_pred``."""
    bindings = spec.bindings
    positive = literal(str(spec.model.positive_label))
    w = f"CAST({ident(weight)} AS DOUBLE)" if weight else "1.0"
    features = bindings.sensitive_features
    cost = spec.analytics.cost_benefit
    expressions = {
        cell: value
        for cell in OUTCOMES
        if cost is not None and isinstance(value := getattr(cost, cell), str)
    }
    grouped = [ident(f.name) for f in features] + [
        ident(bindings.label),
        ident(bindings.prediction),
    ]
    selected = [f"CAST({ident(f.name)} AS VARCHAR) AS {ident('_v_' + f.name)}" for f in features]
    selected += [
        f"CAST({ident(bindings.label)} AS VARCHAR) = {positive} AS _y_true",
        f"CAST({ident(bindings.prediction)} AS VARCHAR) = {positive} AS _y_pred",
        "count(*) AS _n",
        f"sum({w}) AS _w",
        *(
            f"sum({w} * CAST(({sql}) AS DOUBLE)) AS _value_{cell}"
            for cell, sql in expressions.items()
        ),
    ]
    frame = conn.execute(
        f"SELECT {', '.join(selected)} FROM {relation} "
        f"WHERE CAST({ident(bindings.partition_column)} AS DATE) = CAST(? AS DATE) "
        f"GROUP BY {', '.join(grouped)}",
        [partition_key],
    ).df()
    for feature in features:
        frame["_g_" + feature.name] = [group_key(feature, v) for v in frame["_v_" + feature.name]]
    for flag in ("_y_true", "_y_pred"):  # NULL (a NULL label or decision) is neither
        frame[flag] = frame[flag].astype("boolean").fillna(False).astype(bool)
    return frame


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _cell_values(cells: pd.DataFrame, spec: AssessmentSpec, selection_rate: bool) -> dict:
    """Selection rate and cost-benefit of one group's cells."""
    weight = float(cells["_w"].sum())
    values: dict[str, float | None] = {}
    if selection_rate:
        values["selection_rate"] = _ratio(float(cells.loc[cells["_y_pred"], "_w"].sum()), weight)
    cost = spec.analytics.cost_benefit
    if cost is not None:
        for cell, (y_true, y_pred) in OUTCOMES.items():
            inside = cells[(cells["_y_true"] == y_true) & (cells["_y_pred"] == y_pred)]
            value = getattr(cost, cell)
            values[f"value_{cell}"] = (
                float(inside[f"_value_{cell}"].sum())
                if isinstance(value, str)
                else float(value) * float(inside["_w"].sum())
            )
        net = sum(values[f"value_{cell}"] for cell in OUTCOMES)
        values["net_benefit"] = net
        values["net_benefit_per_decision"] = _ratio(net, weight)
    return values


def _spec_kpis(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    *,
    raw: bool,
) -> dict[tuple[str, str], dict[str, float | None]]:
    """The spec's KPIs of every group of every feature set, by (feature set, group key).

    With ``raw`` the grouping sets are over the sensitive features' own values, about four times
    faster than over group keys computed per row: the caller knows each value is its own group.
    """
    bindings = spec.bindings
    feature_sets = bindings.feature_sets
    features = bindings.sensitive_features
    keys = (
        "" if raw else "".join(f", {group_key_sql(f)} AS {ident('_g_' + f.name)}" for f in features)
    )
    column = {f.name: ident(f.name if raw else "_g_" + f.name) for f in features}
    sets = ", ".join(
        "(" + ", ".join(column[f] for f in members) + ")" for members in feature_sets.values()
    )
    selected = ", ".join(
        [f"CAST({column[f.name]} AS VARCHAR) AS {ident('_v_' + f.name)}" for f in features]
        + [f"GROUPING({column[f.name]}) AS {ident('_a_' + f.name)}" for f in features]
        + [f"CAST(({k.sql}) AS DOUBLE) AS {ident(k.name)}" for k in spec.analytics.kpis]
    )
    frame = conn.execute(
        f"""WITH rows AS (
                SELECT *{keys} FROM {relation}
                WHERE CAST({ident(bindings.partition_column)} AS DATE) = CAST(? AS DATE)
            )
            SELECT {selected} FROM rows GROUP BY GROUPING SETS ({sets})""",
        [partition_key],
    ).df()
    out = {}
    for _, row in frame.iterrows():
        grouped = [f for f in features if row["_a_" + f.name] == 0]
        name = next(
            n for n, members in feature_sets.items() if list(members) == [f.name for f in grouped]
        )
        group = (
            INTERSECTION_SEPARATOR.join(
                group_key(f, row["_v_" + f.name]) if raw else row["_v_" + f.name] for f in grouped
            )
            or OVERALL
        )
        out[name, group] = {
            k.name: None if pd.isna(row[k.name]) else float(row[k.name])
            for k in spec.analytics.kpis
        }
    return out


def _own_groups(cells: pd.DataFrame, spec: AssessmentSpec) -> bool:
    """Whether every value of every sensitive feature in the cells is a group of its own (no two
    values fall in the ``(other)`` group)."""
    return all(
        cells["_v_" + f.name].nunique(dropna=False) == cells["_g_" + f.name].nunique()
        for f in spec.bindings.sensitive_features
    )


def compute_kpis(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    *,
    weight: str | None = None,
    selection_rate: bool = False,
) -> pd.DataFrame:
    """KPIs and cost-benefit of one partition of the scored table.

    Args:
        weight: A column of row weights (a reweighted scenario): cost-benefit and the selection rate
            are weighted; the spec's KPIs, arbitrary SQL aggregates with no weighted form, are left out.
        selection_rate: Add the (weighted) selection rate as the result ``selection_rate``.

    Returns:
        Long frame: ``kpi, kind, feature_set, group_key, value, n, suppressed, reason``.
    """
    bindings = spec.bindings
    analytics = spec.analytics
    kinds = {} if weight else {k.name: "kpi" for k in analytics.kpis}
    if selection_rate:
        kinds["selection_rate"] = "fairness"
    if analytics.cost_benefit is not None:
        outcomes = [f"value_{cell}" for cell in OUTCOMES]
        kinds |= dict.fromkeys(
            [*outcomes, "net_benefit", "net_benefit_per_decision"], "cost_benefit"
        )
    if not kinds:
        return pd.DataFrame(columns=COLUMNS)
    cells = _cells(conn, relation, spec, partition_key, weight)
    spec_kpis = (
        {}
        if weight or not analytics.kpis
        else _spec_kpis(conn, relation, spec, partition_key, raw=_own_groups(cells, spec))
    )
    out = []
    for name, members in bindings.feature_sets.items():
        by = [f"_g_{m}" for m in members]
        groups = cells.groupby(by, sort=False) if by else [((), cells)]
        for key, rows in groups:
            group = INTERSECTION_SEPARATOR.join(key) or OVERALL
            n = int(rows["_n"].sum())
            small = name != OVERALL and n < bindings.min_group_size
            values = _cell_values(rows, spec, selection_rate) | spec_kpis.get((name, group), {})
            for kpi, kind in kinds.items():
                value = values.get(kpi)
                value = None if small or value is None or np.isnan(value) else value
                out.append(
                    {
                        "kpi": kpi,
                        "kind": kind,
                        "feature_set": name,
                        "group_key": group,
                        "value": value,
                        "n": n,
                        "suppressed": small,
                        "reason": SUPPRESSED.format(n=n, minimum=bindings.min_group_size)
                        if small
                        else (
                            None if value is not None else "the expression is NULL on these rows"
                        ),
                    }
                )
    return pd.DataFrame(out, columns=COLUMNS).sort_values(
        ["kpi", "feature_set", "group_key"], ignore_index=True
    )
