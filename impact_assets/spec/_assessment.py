"""The whole assessment spec: one YAML file per model in production.

The spec is the product's interface: everything a reviewer needs to judge an assessment is in it.
Unknown keys are rejected everywhere; sections added by later versions are optional, so existing
files keep loading.
"""

from __future__ import annotations

from pydantic import (
    Field,
)

from impact_assets.spec._analytics import AnalyticsSpec
from impact_assets.spec._base import Identifier, NonEmptyText, SpecModel
from impact_assets.spec._bindings import Bindings, SourceSpec, SqlSpec
from impact_assets.spec._fairness import FairnessSpec
from impact_assets.spec._governance import GovernanceSpec, ImpactLevelSpec, ReleaseSpec
from impact_assets.spec._model import ModelSpec
from impact_assets.spec._outcomes import OutcomesSpec
from impact_assets.spec._oversight import NotificationsSpec
from impact_assets.spec._quality import QualitySpec
from impact_assets.spec._register import RegisterEntry
from impact_assets.spec._runtime import (
    EngineSpec,
    OrchestrationSpec,
    PartitionsSpec,
    SimulationSpec,
)


class Stakeholder(SpecModel):
    """A group of people or an organisation the model affects."""

    id: Identifier
    """Identifier that register entries use."""
    description: NonEmptyText
    """Who they are and how the model can harm or help them."""


class AssessmentSpec(SpecModel):
    """A model impact assessment: intended use, data, groups, register."""

    id: Identifier
    """Lowercase identifier: asset-key prefix, asset group and DuckDB schema of the SQL models (`impact` and `main` are reserved)."""
    title: NonEmptyText
    """Title of the assessment, shown in the UI and the report."""
    intended_use: NonEmptyText
    """What the model decides, for whom, and what it must not be used for, in plain language; opens the report."""
    limitations: tuple[NonEmptyText, ...] = Field(min_length=1)
    """Where the data or the model fall short, one plain-language sentence each."""
    owners: tuple[NonEmptyText, ...] = Field(min_length=1)
    """Who answers for the assessment (e-mail addresses become Dagster asset owners)."""
    stakeholders: tuple[Stakeholder, ...] = Field(min_length=1)
    """The groups of people and organisations the model affects; register entries name one."""
    model: ModelSpec
    """The model assessed, and optionally the registry that scores the partitions."""
    sources: dict[Identifier, SourceSpec] = Field(min_length=1)
    """Raw files, each exposed to the SQL models as a view named by its key."""
    sql: SqlSpec = SqlSpec()
    """Which SQL models belong to this assessment."""
    engine: EngineSpec = EngineSpec()
    """Which engine runs the SQL models and the row-level aggregates (DuckDB or Spark)."""
    partitions: PartitionsSpec
    """The daily partitions."""
    bindings: Bindings
    """Which table holds the scored rows and what its columns mean."""
    outcomes: OutcomesSpec | None = None
    """Outcomes known only after the decision: their table, maturity, cohorts and estimates; omitted, each day's outcomes are known that day."""
    fairness: FairnessSpec = FairnessSpec()
    """Bootstrap intervals, calibration bins and reference groups of the group metrics."""
    quality: QualitySpec = QualitySpec()
    """Data-quality expectations (Great Expectations 1.x) per table, and the derived defaults."""
    governance: GovernanceSpec = GovernanceSpec()
    """Due dates and auto-resolution of governance actions."""
    release: ReleaseSpec = ReleaseSpec()
    """Which entry statuses hold a release or roll it back, and who signs an approval off."""
    notifications: NotificationsSpec = NotificationsSpec()
    """Where notices of breaches, actions, escalations, releases and failed runs go."""
    impact_level: ImpactLevelSpec | None = None
    """Questions scoring the impact level (after the Canada Algorithmic Impact Assessment)."""
    orchestration: OrchestrationSpec = OrchestrationSpec()
    """Nightly schedule and sensor interval."""
    analytics: AnalyticsSpec = AnalyticsSpec()
    """KPIs, cost-benefit, drift, scenarios, sensitivity and causal estimates."""
    register_entries: tuple[RegisterEntry, ...] = Field(min_length=1, alias="register")
    """The impact register: what must hold, measured on every run."""
    simulation: SimulationSpec | None = None
    """Demo only: the simulator that writes daily batches from bundled real data."""
