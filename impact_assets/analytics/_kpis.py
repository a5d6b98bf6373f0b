"""Business KPIs and cost-benefit of a partition's decisions, overall and per group, in one DuckDB scan.

Every feature set (overall, each sensitive feature, each intersection) is one grouping set of a single
``GROUP BY GROUPING SETS`` query, so ten million rows are read once whatever the number of KPIs and
groups. Groups smaller than the minimum group size are reported suppressed (value NULL, reason
stated), as for the fairness metrics.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from impact_assets.fairness import group_key_sql
from impact_assets.spec import INTERSECTION_SEPARATOR, OVERALL, AssessmentSpec, CostBenefitSpec
from impact_assets.sql import ident, literal

__all__ = ["compute_kpis"]

SUPPRESSED = "group of {n} rows is below the minimum group size {minimum}"


def _outcome_value(value: float | str) -> str:
    return (
        f"CAST({value!r} AS DOUBLE)"
        if isinstance(value, int | float)
        else f"CAST(({value}) AS DOUBLE)"
    )


def _cost_benefit(
    spec: CostBenefitSpec, y_true: str, y_pred: str, weight: str = "1"
) -> dict[str, str]:
    cells = {
        "value_tp": f"{y_pred} = 1 AND {y_true} = 1",
        "value_fp": f"{y_pred} = 1 AND {y_true} = 0",
        "value_tn": f"{y_pred} = 0 AND {y_true} = 0",
        "value_fn": f"{y_pred} = 0 AND {y_true} = 1",
    }
    sums = {
        name: f"coalesce(sum(CASE WHEN {condition} THEN {weight} * {_outcome_value(getattr(spec, name[-2:]))} ELSE 0 END), 0)"
        for name, condition in cells.items()
    }
    total = " + ".join(f"({s})" for s in sums.values())
    return {
        **sums,
        "net_benefit": total,
        "net_benefit_per_decision": f"({total}) / sum({weight})",
    }


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
    positive = spec.model.positive_label
    y_true = f"(CAST({ident(bindings.label)} AS VARCHAR) = {literal(str(positive))})::INTEGER"
    y_pred = f"(CAST({ident(bindings.prediction)} AS VARCHAR) = {literal(str(positive))})::INTEGER"
    w = ident(weight) if weight else "1"
    expressions = {} if weight else {k.name: (k.sql, "kpi") for k in analytics.kpis}
    if selection_rate:
        expressions["selection_rate"] = (f"sum({w} * _y_pred) / sum({w})", "fairness")
    if analytics.cost_benefit is not None:
        for name, sql in _cost_benefit(analytics.cost_benefit, "_y_true", "_y_pred", w).items():
            expressions[name] = (sql, "cost_benefit")
    if not expressions:
        return pd.DataFrame(
            columns=[
                "kpi",
                "kind",
                "feature_set",
                "group_key",
                "value",
                "n",
                "suppressed",
                "reason",
            ]
        )
    feature_sets = bindings.feature_sets
    features = [f.name for f in bindings.sensitive_features]
    keys = ", ".join(
        f"{group_key_sql(f)} AS {ident('_g_' + f.name)}" for f in bindings.sensitive_features
    )
    sets = ", ".join(
        "(" + ", ".join(ident("_g_" + f) for f in members) + ")"
        for members in feature_sets.values()
    )
    selected = ", ".join(
        [ident("_g_" + f) for f in features]
        + ["count(*) AS _n"]
        + [f"CAST(({sql}) AS DOUBLE) AS {ident(name)}" for name, (sql, _) in expressions.items()]
    )
    frame = conn.execute(
        f"""WITH rows AS (
                SELECT *, {keys + ", " if keys else ""}{y_true} AS _y_true, {y_pred} AS _y_pred
                FROM {relation}
                WHERE CAST({ident(bindings.partition_column)} AS DATE) = CAST(? AS DATE)
            )
            SELECT {selected} FROM rows GROUP BY GROUPING SETS ({sets})""",
        [partition_key],
    ).df()
    out = []
    for _, row in frame.iterrows():
        grouped = tuple(f for f in features if not pd.isna(row["_g_" + f]))
        name = next(n for n, members in feature_sets.items() if tuple(members) == grouped)
        group = INTERSECTION_SEPARATOR.join(str(row["_g_" + f]) for f in grouped) or OVERALL
        n = int(row["_n"])
        small = name != OVERALL and n < bindings.min_group_size
        for kpi, (_, kind) in expressions.items():
            value = None if small or pd.isna(row[kpi]) else float(row[kpi])
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
                    else (None if value is not None else "the expression is NULL on these rows"),
                }
            )
    return pd.DataFrame(out).sort_values(["kpi", "feature_set", "group_key"], ignore_index=True)
