"""Which register entries need outcomes: those are evaluated on matured cohorts, the others on the
night's decisions."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from impact_assets.spec import (
    DECISION_TIME_DISPARITIES,
    DECISION_TIME_METRICS,
    AssessmentSpec,
    CausalRef,
    DisparityRef,
    DriftRef,
    GroupMetricRef,
    KpiRef,
    LabelCoverageRef,
    QualityRef,
    RegisterEntry,
    ScenarioRef,
    SensitivityRef,
)

__all__ = ["needs_outcomes"]

#: Scenario results known at decision time (beside decision-time KPIs).
DECISION_TIME_SCENARIO_RESULTS = frozenset(
    {"count", "selection_rate", "demographic_parity_ratio", "demographic_parity_difference"}
)


def reads_column(sql: str, column: str) -> bool:
    """Whether a SQL expression names ``column`` (unparseable SQL counts as reading it)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError:
        return True
    return any(c.name == column for c in tree.find_all(exp.Column))


def _kpi_needs_outcomes(spec: AssessmentSpec, name: str) -> bool:
    for kpi in spec.analytics.kpis:
        if kpi.name == name:
            return reads_column(kpi.sql, spec.bindings.label)
    return True  # a cost-benefit result: its value depends on the outcome


def needs_outcomes(entry: RegisterEntry, spec: AssessmentSpec) -> bool:
    """Whether the entry's measure depends on outcomes (always ``False`` without an ``outcomes`` section)."""
    if spec.outcomes is None:
        return False
    ref = entry.measure
    label = spec.bindings.label
    if isinstance(ref, LabelCoverageRef):
        return True
    if isinstance(ref, GroupMetricRef):
        return ref.metric not in DECISION_TIME_METRICS
    if isinstance(ref, DisparityRef):
        return ref.metric not in DECISION_TIME_DISPARITIES
    if isinstance(ref, KpiRef):
        return _kpi_needs_outcomes(spec, ref.kpi)
    if isinstance(ref, CausalRef):
        return any(
            reads_column(c.outcome, label) for c in spec.analytics.causal if c.name == ref.estimate
        )
    if isinstance(ref, DriftRef):
        return ref.column == label
    if isinstance(ref, ScenarioRef):
        if ref.metric in DECISION_TIME_SCENARIO_RESULTS:
            return False
        return _kpi_needs_outcomes(spec, ref.metric)
    if isinstance(ref, SensitivityRef):
        watched = spec.analytics.sensitivity
        return ref.metric == "accuracy" or (
            watched is not None and not watched.metric.startswith("demographic_parity")
        )
    if isinstance(ref, QualityRef):
        return ref.table == spec.bindings.scored_table and ref.check.startswith(f"{label}_")
    return False
