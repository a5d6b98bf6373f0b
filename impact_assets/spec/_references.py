"""Cross-references a single model cannot check: that each register entry's metric exists in the
sections of the spec it names (a KPI, a scenario, a feature set, a quality table).
"""

from __future__ import annotations

from impact_assets.spec._assessment import AssessmentSpec
from impact_assets.spec._base import INTERSECTION_SEPARATOR, OVERALL, SCORE_METRICS
from impact_assets.spec._outcomes import LabelCoverageRef
from impact_assets.spec._register import (
    CausalRef,
    DisparityRef,
    DriftRef,
    GroupMetricRef,
    KpiRef,
    QualityRef,
    ScenarioRef,
    SensitivityRef,
)

RESERVED_IDS = frozenset({"impact", "main", "information_schema", "pg_catalog", "temp"})

Path = tuple[str | int, ...]

#: What a cost-benefit section adds to the KPIs: each outcome's summed value, their total, per decision.
COST_BENEFIT_RESULTS = (
    "value_tp",
    "value_fp",
    "value_tn",
    "value_fn",
    "net_benefit",
    "net_benefit_per_decision",
)


def _drift_ref_problems(spec: AssessmentSpec, ref: DriftRef, at: Path) -> list[tuple[Path, str]]:
    drift, scoring, b = spec.analytics.drift, spec.model.registry, spec.bindings
    if drift is None or scoring is None:
        return [
            (
                (*at, "measure"),
                "drift needs analytics.drift and a model registry (its training snapshot)",
            )
        ]
    compared = [*(drift.columns or scoring.features), *([b.score] if b.score else []), b.label]
    compared += [f.name for f in b.sensitive_features]
    if ref.column not in compared:
        return [
            (
                (*at, "measure", "column"),
                f"drift is not computed for {ref.column!r} (compared: {compared})",
            )
        ]
    return []


def reference_errors(spec: AssessmentSpec) -> list[tuple[Path, str]]:
    """Cross-references a field-level model cannot check, each with the path of the field at fault."""
    errors: list[tuple[Path, str]] = []
    stakeholders = [s.id for s in spec.stakeholders]
    ids = [e.id for e in spec.register_entries]
    feature_sets = spec.bindings.feature_sets
    values = {f.name: f.values for f in spec.bindings.sensitive_features}
    for i, entry in enumerate(spec.register_entries):
        at: Path = ("register", i)
        if ids.count(entry.id) > 1:
            errors.append(((*at, "id"), f"register entry id {entry.id!r} is used more than once"))
        if entry.stakeholder not in stakeholders:
            errors.append(
                (
                    (*at, "stakeholder"),
                    f"stakeholder {entry.stakeholder!r} is not declared (declared: {stakeholders})",
                )
            )
        ref = entry.measure
        if spec.outcomes is None and (isinstance(ref, LabelCoverageRef) or entry.warn_on_estimate):
            field = "measure" if isinstance(ref, LabelCoverageRef) else "warn_on_estimate"
            errors.append(
                ((*at, field), "needs an `outcomes` section (outcomes known after the decision)")
            )
            continue
        if isinstance(ref, QualityRef):
            continue  # checked against the quality suite when the assessment is resolved
        if isinstance(ref, DriftRef):
            errors += _drift_ref_problems(spec, ref, at)
            continue
        if isinstance(ref, CausalRef):
            names = [c.name for c in spec.analytics.causal]
            if ref.estimate not in names:
                errors.append(
                    (
                        (*at, "measure", "estimate"),
                        f"no causal estimate {ref.estimate!r} (declared: {names})",
                    )
                )
            continue
        if isinstance(ref, SensitivityRef):
            scoring = spec.model.registry
            if spec.analytics.sensitivity is None or scoring is None:
                errors.append(
                    ((*at, "measure"), "needs analytics.sensitivity and a model registry")
                )
            elif ref.feature not in scoring.features:
                errors.append(
                    (
                        (*at, "measure", "feature"),
                        f"{ref.feature!r} is not a model feature (features: {list(scoring.features)})",
                    )
                )
            continue
        if isinstance(ref, ScenarioRef):
            names = [s.name for s in spec.analytics.scenarios]
            if ref.scenario not in names:
                errors.append(
                    (
                        (*at, "measure", "scenario"),
                        f"no scenario {ref.scenario!r} (declared: {names})",
                    )
                )
                continue
            if ref.metric.startswith("demographic_parity_"):
                if ref.feature_set == OVERALL or ref.feature_set not in feature_sets:
                    valid = [f for f in feature_sets if f != OVERALL]
                    errors.append(
                        (
                            (*at, "measure", "feature_set"),
                            f"demographic parity needs a feature set with groups (valid: {valid})",
                        )
                    )
                elif ref.group != OVERALL:
                    errors.append(
                        (
                            (*at, "measure", "group"),
                            "demographic parity is across groups: leave group out",
                        )
                    )
                continue
        if isinstance(ref, KpiRef):
            kpis = [k.name for k in spec.analytics.kpis]
            if spec.analytics.cost_benefit is not None:
                kpis += list(COST_BENEFIT_RESULTS)
            if ref.kpi not in kpis:
                errors.append(((*at, "measure", "kpi"), f"no KPI {ref.kpi!r} (declared: {kpis})"))
        if ref.feature_set not in feature_sets:
            errors.append(
                (
                    (*at, "measure", "feature_set"),
                    f"feature_set {ref.feature_set!r} is unknown (valid: {list(feature_sets)})",
                )
            )
            continue
        if isinstance(ref, GroupMetricRef | KpiRef | ScenarioRef | LabelCoverageRef):
            problem = _group_problem(ref, feature_sets[ref.feature_set], values)
            if problem:
                errors.append(((*at, "measure", "group"), problem))
        elif ref.feature_set == OVERALL:
            errors.append(
                (
                    (*at, "measure", "feature_set"),
                    "a disparity needs a feature_set with groups, not 'overall'",
                )
            )
        elif (
            ref.relative_to not in ("between_groups", "to_overall")
            and spec.fairness.reference_groups.get(ref.feature_set) != ref.relative_to
        ):
            errors.append(
                (
                    (*at, "measure", "relative_to"),
                    f"relative_to {ref.relative_to!r} must be 'between_groups', 'to_overall' or the reference group of "
                    f"{ref.feature_set!r} in fairness.reference_groups (declared: {spec.fairness.reference_groups})",
                )
            )
        if entry.thresholds.decide_on == "interval" and spec.fairness.bootstrap.resamples == 0:
            errors.append(
                (
                    (*at, "thresholds", "decide_on"),
                    "deciding on the interval needs bootstrap intervals (fairness.bootstrap.resamples > 0)",
                )
            )
        if (
            isinstance(ref, (GroupMetricRef, DisparityRef))
            and ref.metric in SCORE_METRICS
            and spec.bindings.score is None
        ):
            errors.append(
                (
                    (*at, "measure", "metric"),
                    f"{ref.metric!r} needs a score column (bindings.score)",
                )
            )
    for feature_set, group in spec.fairness.reference_groups.items():
        at = ("fairness", "reference_groups", feature_set)
        if feature_set not in feature_sets or feature_set == OVERALL:
            errors.append(
                (
                    at,
                    f"{feature_set!r} is not a feature set (valid: {[f for f in feature_sets if f != OVERALL]})",
                )
            )
            continue
        problem = _group_problem(
            GroupMetricRef(
                source="group_metric", metric="count", feature_set=feature_set, group=group
            ),
            feature_sets[feature_set],
            values,
        )
        if problem:
            errors.append((at, problem))
    if spec.outcomes is not None and spec.engine.kind != "duckdb":
        errors.append(
            (("outcomes",), "outcomes that arrive late are assessed with the duckdb engine only")
        )
    if spec.id in RESERVED_IDS:
        errors.append(
            (
                ("id",),
                f"{spec.id!r} is reserved (it names a DuckDB schema the package uses); choose another id",
            )
        )
    if spec.impact_level is not None:
        for i, question in enumerate(spec.impact_level.mitigation):
            if question.control is not None and question.control not in ids:
                errors.append(
                    (
                        ("impact_level", "mitigation", i, "control"),
                        f"control {question.control!r} is not a register entry (entries: {ids})",
                    )
                )
        for i, question in enumerate(spec.impact_level.impact):
            if question.control is not None:
                errors.append(
                    (
                        ("impact_level", "impact", i, "control"),
                        "only mitigation questions take a control",
                    )
                )
    if spec.simulation and spec.simulation.source not in spec.sources:
        errors.append(
            (
                ("simulation", "source"),
                f"{spec.simulation.source!r} is not a source (sources: {list(spec.sources)})",
            )
        )
    if spec.model.registry and spec.model.registry.features_table == spec.bindings.scored_table:
        errors.append(
            (
                ("model", "registry", "features_table"),
                "the features table cannot be the scored table (scores are joined onto features)",
            )
        )
    return errors


def _group_problem(
    ref: GroupMetricRef | KpiRef,
    features: tuple[str, ...],
    values: dict[str, tuple[str, ...] | None],
) -> str | None:
    if not features:
        return (
            None
            if ref.group == OVERALL
            else f"feature_set 'overall' has the single group 'overall', not {ref.group!r}"
        )
    parts = ref.group.split(INTERSECTION_SEPARATOR)
    if len(parts) != len(features):
        return f"group {ref.group!r} needs one value per feature of {list(features)}, joined by {INTERSECTION_SEPARATOR!r}"
    for feature, part in zip(features, parts, strict=True):
        declared = values.get(feature)
        if declared is not None and part not in declared:
            return f"{part!r} is not a declared value of {feature!r} (declared: {list(declared)})"
    return None
