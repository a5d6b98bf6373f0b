"""Business KPIs and cost-benefit of a partition's decisions, overall and per group, in one scan.

* The cells: one ``GROUP BY`` over the raw values of the sensitive features, the label and the decision
  gives each cell's rows, weight and, for outcome values written as SQL expressions, the sum of each
  outcome's value. The selection rate and the cost-benefit of every group of every feature set (overall,
  each sensitive feature, each intersection) are sums over cells, taken here.
* The spec's KPIs, arbitrary SQL aggregates. A KPI whose aggregates all decompose (``count``,
  ``count_if``, ``sum``, ``avg``, ``min``, ``max``, none ``DISTINCT``, filtered or windowed) is
  rewritten with sqlglot: the cells' scan also takes each aggregate's partial value per cell (``avg(x)``
  becomes ``sum(x)`` and ``count(x)``), and the KPI is evaluated over the cells, every feature set one
  grouping set. A KPI reading a partial that comes back NaN (a NaN in the data) goes to the rows
  instead: the cells' frame cannot tell NaN from NULL. Any other KPI (``median(x)``,
  ``count(DISTINCT x)``...) is evaluated over the rows, in one second scan with ``GROUP BY GROUPING
  SETS``.

So ten million rows are read once, or twice if a KPI does not decompose, whatever the number of KPIs
and groups. Groups smaller than the minimum group size are reported suppressed (value NULL, reason
stated), as for the fairness metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from impact_assets.fairness import group_key, group_key_sql
from impact_assets.spec import INTERSECTION_SEPARATOR, OVERALL, AssessmentSpec, KpiSpec
from impact_assets.sql import ident, literal

__all__ = ["compute_kpis"]

SUPPRESSED = "group of {n} rows is below the minimum group size {minimum}"
COLUMNS = ["kpi", "kind", "feature_set", "group_key", "value", "n", "suppressed", "reason"]
#: The outcome cells of cost-benefit: (y_true, y_pred) of each.
OUTCOMES = {"tp": (True, True), "fp": (False, True), "tn": (False, False), "fn": (True, False)}
#: Aggregates whose value over a group follows from partial values per cell (see :func:`_over_cells`).
_DECOMPOSABLE = (exp.Count, exp.CountIf, exp.Sum, exp.Avg, exp.Min, exp.Max)
#: Nodes that make a KPI undecomposable outside a decomposable aggregate: another aggregate, a function
#: sqlglot does not know (it may aggregate), a row's column, a window, a filter clause or a subquery.
_ROW_LEVEL = (exp.AggFunc, exp.Anonymous, exp.Column, exp.Window, exp.Filter, exp.Query, exp.Star)


@dataclass
class _Decomposed:
    """The spec's KPIs split into those evaluated over the cells and those over the rows."""

    partials: dict[str, str] = field(default_factory=dict)
    """Alias -> partial aggregate over a cell's rows (``sum(x)``), taken in the cells' scan."""
    over_cells: dict[str, str] = field(default_factory=dict)
    """KPI name -> its SQL over the cells (``sum(_p0) / sum(_p1)``)."""
    over_rows: list[KpiSpec] = field(default_factory=list)
    counted: dict[str, str] = field(default_factory=dict)
    """Alias of a ``sum``, ``min`` or ``max`` partial -> alias of its argument's ``count``."""
    reads: dict[str, set[str]] = field(default_factory=dict)
    """KPI name -> the partials its SQL over the cells reads."""

    def with_nan(self, cells: pd.DataFrame) -> list[str]:
        """The KPIs over the cells that read a partial which is missing in a cell with values: a NaN
        in the data, which the cells' frame cannot tell from NULL, so only the rows' own aggregate
        treats it as SQL does."""
        nan = {
            alias
            for alias, count in self.counted.items()
            if (cells[alias].isna() & (cells[count] > 0)).any()
        }
        return [name for name, partials in self.reads.items() if partials & nan]


def _partial(decomposed: _Decomposed, sql: str) -> exp.Column:
    alias = next((a for a, s in decomposed.partials.items() if s == sql), None)
    if alias is None:
        alias = f"_p{len(decomposed.partials)}"
        decomposed.partials[alias] = sql
    return exp.column(alias)


def _over_cells(node: exp.Expression, decomposed: _Decomposed) -> exp.Expression:
    """A decomposable aggregate as the combination of its partials over the cells."""
    argument = node.this
    if isinstance(node, exp.Count) and (argument is None or isinstance(argument, exp.Star)):
        return exp.func("COALESCE", exp.func("sum", exp.column("_n")), exp.Literal.number(0))
    sql = argument.sql("duckdb")
    if isinstance(node, (exp.Count, exp.CountIf)):
        name = "count" if isinstance(node, exp.Count) else "count_if"
        total = exp.func("sum", _partial(decomposed, f"{name}({sql})"))
        return exp.func("COALESCE", total, exp.Literal.number(0))
    values = _partial(decomposed, f"count({sql})")
    if isinstance(node, (exp.Min, exp.Max)):
        name = "min" if isinstance(node, exp.Min) else "max"
        extreme = _partial(decomposed, f"{name}({sql})")
        decomposed.counted[extreme.name] = values.name
        return exp.func(name, extreme)
    total = _partial(decomposed, f"CAST(sum({sql}) AS DOUBLE)")
    decomposed.counted[total.name] = values.name
    if isinstance(node, exp.Sum):
        return exp.func("sum", total)
    return exp.paren(exp.Div(this=exp.func("sum", total), expression=exp.func("sum", values)))


def _decomposable(node: exp.Expression) -> bool:
    extra = set(node.args) - {"this", "big_int"}  # max(x, 3) is a list of the 3 largest
    if not isinstance(node, _DECOMPOSABLE) or any(node.args.get(k) for k in extra):
        return False
    argument = node.this
    if argument is None:  # count()
        return isinstance(node, exp.Count)
    return not isinstance(argument, exp.Distinct) and argument.find(exp.AggFunc) is None


def _decompose(kpis: Sequence[KpiSpec]) -> _Decomposed:
    """Split the KPIs: each one whose every aggregate decomposes is rewritten over the cells."""
    decomposed = _Decomposed()
    for kpi in kpis:
        try:
            tree = sqlglot.parse_one(kpi.sql, read="duckdb")
        except SqlglotError:
            decomposed.over_rows.append(kpi)
            continue
        aggregates, stack = [], [tree]
        while stack:
            node = stack.pop()
            if _decomposable(node):
                aggregates.append(node)
            elif isinstance(node, _ROW_LEVEL):
                aggregates = None
                break
            else:
                stack.extend(node.iter_expressions())
        if aggregates is None:
            decomposed.over_rows.append(kpi)
            continue
        for node in aggregates:
            replacement = _over_cells(node, decomposed)
            if node is tree:
                tree = replacement
            else:
                node.replace(replacement)
        decomposed.over_cells[kpi.name] = tree.sql("duckdb")
        decomposed.reads[kpi.name] = {c.name for c in tree.find_all(exp.Column)}
    return decomposed


def _cells(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    weight: str | None,
    partials: Mapping[str, str],
) -> pd.DataFrame:
    """Rows, weight, sums of the outcome values that are SQL expressions and the KPIs' ``partials``,
    per cell, with each sensitive feature's group key (``_g_<feature>``) and booleans ``_y_true``,
    ``_y_pred``."""
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
        *(f"{sql} AS {ident(alias)}" for alias, sql in partials.items()),
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


def _additive(cells: pd.DataFrame, spec: AssessmentSpec, selection_rate: bool) -> pd.DataFrame:
    """Per cell, the sums the selection rate and cost-benefit are made of: rows, weight, selected
    weight and each outcome's value (0 outside the outcome)."""
    sums = cells[["_n", "_w"]].copy()
    if selection_rate:
        sums["_selected"] = cells["_w"].where(cells["_y_pred"], 0.0)
    cost = spec.analytics.cost_benefit
    if cost is not None:
        for cell, (y_true, y_pred) in OUTCOMES.items():
            inside = (cells["_y_true"] == y_true) & (cells["_y_pred"] == y_pred)
            value = getattr(cost, cell)
            per_cell = (
                cells[f"_value_{cell}"] if isinstance(value, str) else float(value) * cells["_w"]
            )
            sums[f"value_{cell}"] = per_cell.where(inside, 0.0)
    return sums


def _cell_values(sums: pd.Series, spec: AssessmentSpec, selection_rate: bool) -> dict:
    """Selection rate and cost-benefit of one group, from the sum of its cells' :func:`_additive`."""
    weight = float(sums["_w"])
    values: dict[str, float | None] = {}
    if selection_rate:
        values["selection_rate"] = _ratio(float(sums["_selected"]), weight)
    if spec.analytics.cost_benefit is not None:
        for cell in OUTCOMES:
            values[f"value_{cell}"] = float(sums[f"value_{cell}"])
        net = sum(values[f"value_{cell}"] for cell in OUTCOMES)
        values["net_benefit"] = net
        values["net_benefit_per_decision"] = _ratio(net, weight)
    return values


def _grouped_kpis(
    conn: duckdb.DuckDBPyConnection,
    rows: str,
    spec: AssessmentSpec,
    expressions: Mapping[str, str],
    *,
    columns: Mapping[str, str],
    raw: bool,
    params: Sequence[object] = (),
) -> dict[tuple[str, str], dict[str, float | None]]:
    """KPIs given as SQL ``expressions`` of every group of every feature set, by (feature set, group
    key), in one ``GROUP BY GROUPING SETS`` query over ``rows``.

    Args:
        rows: The rows (or cells) grouped: a relation or a parenthesized query taking ``params``.
        columns: Sensitive feature -> the column of ``rows`` holding its value (``raw``) or group key.
    """
    feature_sets = spec.bindings.feature_sets
    features = spec.bindings.sensitive_features
    column = {f.name: ident(columns[f.name]) for f in features}
    sets = ", ".join(
        "(" + ", ".join(column[f] for f in members) + ")" for members in feature_sets.values()
    )
    selected = ", ".join(
        [f"CAST({column[f.name]} AS VARCHAR) AS {ident('_v_' + f.name)}" for f in features]
        + [f"GROUPING({column[f.name]}) AS {ident('_a_' + f.name)}" for f in features]
        + [f"CAST(({sql}) AS DOUBLE) AS {ident(name)}" for name, sql in expressions.items()]
    )
    frame = conn.execute(
        f"SELECT {selected} FROM {rows} GROUP BY GROUPING SETS ({sets})", list(params)
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
            kpi: None if pd.isna(row[kpi]) else float(row[kpi]) for kpi in expressions
        }
    return out


def _kpis_over_rows(
    conn: duckdb.DuckDBPyConnection,
    relation: str,
    spec: AssessmentSpec,
    partition_key: str,
    kpis: Sequence[KpiSpec],
    *,
    raw: bool,
) -> dict[tuple[str, str], dict[str, float | None]]:
    """``kpis`` over the partition's rows. With ``raw`` the grouping sets are over the sensitive
    features' own values, about four times faster than over group keys computed per row: the caller
    knows each value is its own group."""
    features = spec.bindings.sensitive_features
    keys = (
        "" if raw else "".join(f", {group_key_sql(f)} AS {ident('_g_' + f.name)}" for f in features)
    )
    rows = (
        f"(SELECT *{keys} FROM {relation} "
        f"WHERE CAST({ident(spec.bindings.partition_column)} AS DATE) = CAST(? AS DATE))"
    )
    return _grouped_kpis(
        conn,
        rows,
        spec,
        {k.name: k.sql for k in kpis},
        columns={f.name: f.name if raw else "_g_" + f.name for f in features},
        raw=raw,
        params=[partition_key],
    )


@functools.cache
def _local_database() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB. Each use takes a cursor of its own: a new database costs
    about 50 ms (its catalog of built-in functions), a cursor microseconds."""
    return duckdb.connect()


def _kpis_over_cells(
    cells: pd.DataFrame, spec: AssessmentSpec, expressions: Mapping[str, str]
) -> dict[tuple[str, str], dict[str, float | None]]:
    """KPIs rewritten over the cells (their partials summed per group), on an in-memory DuckDB."""
    features = spec.bindings.sensitive_features
    with _local_database().cursor() as local:
        local.register("_cells", cells)
        return _grouped_kpis(
            local,
            "_cells",
            spec,
            expressions,
            columns={f.name: "_g_" + f.name for f in features},
            raw=False,
        )


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
    decomposed = _decompose(() if weight else analytics.kpis)
    cells = _cells(conn, relation, spec, partition_key, weight, decomposed.partials)
    with_nan = decomposed.with_nan(cells)
    over_cells = {k: v for k, v in decomposed.over_cells.items() if k not in with_nan}
    row_kpis = [*decomposed.over_rows, *(k for k in analytics.kpis if k.name in with_nan)]
    spec_kpis = _kpis_over_cells(cells, spec, over_cells) if over_cells else {}
    if row_kpis:
        from_rows = _kpis_over_rows(
            conn, relation, spec, partition_key, row_kpis, raw=_own_groups(cells, spec)
        )
        for group, values in from_rows.items():
            spec_kpis[group] = spec_kpis.get(group, {}) | values
    sums = _additive(cells, spec, selection_rate)
    out = []
    for name, members in bindings.feature_sets.items():
        if members:
            totals = sums.groupby([cells[f"_g_{m}"] for m in members], sort=False).sum()
            if len(members) > 1:
                totals.index = [INTERSECTION_SEPARATOR.join(k) for k in totals.index]
        else:
            totals = sums.sum().to_frame(OVERALL).T
        for group, row in totals.iterrows():
            n = int(row["_n"])
            small = name != OVERALL and n < bindings.min_group_size
            values = _cell_values(row, spec, selection_rate) | spec_kpis.get((name, group), {})
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
