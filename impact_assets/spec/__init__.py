"""The assessment spec: typed models and the YAML loader."""

from impact_assets.spec._analytics import (
    AnalyticsSpec,
    CausalSpec,
    CostBenefitSpec,
    DriftSpec,
    KpiSpec,
    ScenarioSpec,
    SensitivitySpec,
)
from impact_assets.spec._assessment import AssessmentSpec, Stakeholder
from impact_assets.spec._base import (
    DECISION_METRICS,
    DISPARITY_METRICS,
    GROUP_METRICS,
    INTERSECTION_SEPARATOR,
    NAMED_DISPARITIES,
    OVERALL,
    SCORE_METRICS,
    intersection_name,
)
from impact_assets.spec._bindings import Bindings, SensitiveFeature, SourceSpec, SqlSpec
from impact_assets.spec._fairness import BootstrapSpec, FairnessSpec
from impact_assets.spec._governance import (
    GovernanceSpec,
    ImpactLevelSpec,
    ImpactQuestion,
    ReleaseSpec,
)
from impact_assets.spec._loader import SpecSource, load_spec, spec_error
from impact_assets.spec._model import ModelSpec, RegistryScoring
from impact_assets.spec._quality import ExpectationSpec, FreshnessSpec, QualitySpec
from impact_assets.spec._register import (
    CausalRef,
    DisparityRef,
    DriftRef,
    GroupMetricRef,
    KpiRef,
    MetricRef,
    QualityRef,
    RegisterEntry,
    ScenarioRef,
    SensitivityRef,
    Thresholds,
)
from impact_assets.spec._runtime import (
    EngineSpec,
    OrchestrationSpec,
    PartitionsSpec,
    ScheduleSpec,
    SimulationSpec,
    SparkEngineSpec,
)
from impact_assets.spec._schema import SCHEMA_ID, json_schema, markdown_reference

__all__ = [
    "DECISION_METRICS",
    "DISPARITY_METRICS",
    "GROUP_METRICS",
    "INTERSECTION_SEPARATOR",
    "NAMED_DISPARITIES",
    "OVERALL",
    "SCHEMA_ID",
    "SCORE_METRICS",
    "AnalyticsSpec",
    "AssessmentSpec",
    "Bindings",
    "BootstrapSpec",
    "CausalRef",
    "CausalSpec",
    "CostBenefitSpec",
    "DisparityRef",
    "DriftRef",
    "DriftSpec",
    "EngineSpec",
    "ExpectationSpec",
    "FairnessSpec",
    "FreshnessSpec",
    "GovernanceSpec",
    "GroupMetricRef",
    "ImpactLevelSpec",
    "ImpactQuestion",
    "KpiRef",
    "KpiSpec",
    "MetricRef",
    "ModelSpec",
    "OrchestrationSpec",
    "PartitionsSpec",
    "QualityRef",
    "QualitySpec",
    "RegisterEntry",
    "RegistryScoring",
    "ReleaseSpec",
    "ScenarioRef",
    "ScenarioSpec",
    "ScheduleSpec",
    "SensitiveFeature",
    "SensitivityRef",
    "SensitivitySpec",
    "SimulationSpec",
    "SourceSpec",
    "SparkEngineSpec",
    "SpecSource",
    "SqlSpec",
    "Stakeholder",
    "Thresholds",
    "intersection_name",
    "json_schema",
    "load_spec",
    "markdown_reference",
    "spec_error",
]
