"""When and where an assessment runs: schedule, partitions, row engine, and the demo's simulator."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import Cron, Identifier, NonEmptyText, SpecModel


class ScheduleSpec(SpecModel):
    """When the nightly assessment of the previous day runs."""

    cron: Cron = "0 2 * * *"
    """Cron expression of the nightly run."""
    timezone: str = "UTC"
    """Timezone of the cron expression."""


class OrchestrationSpec(SpecModel):
    """Schedule and sensors of the assessment."""

    schedule: ScheduleSpec = ScheduleSpec()
    """The nightly schedule that assesses the previous day."""
    sensor_interval_seconds: int = Field(
        default=60,
        ge=5,
        le=86_400,
        description="How often the data and model sensors look for changes.",
    )


class PartitionsSpec(SpecModel):
    """Daily partitions of the assessment."""

    start_date: dt.date
    """First day with data."""
    timezone: str = "UTC"
    """Timezone of the days."""


class SimulatedRollout(SpecModel):
    """Demo only: a new offer (version 2) rolled out to one segment, with a planted effect on its outcome."""

    column: str = Field(description="Raw column that defines the segment, e.g. `purpose`.")
    value: str = Field(description="Its value for the treated segment, e.g. `car (new)`.")
    days_ago: int = Field(
        default=3,
        ge=1,
        description="Batches of this many days before today, and later, are after the rollout.",
    )
    flip_to_good: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="After the rollout, this share of the segment's unfavourable outcomes turns favourable.",
    )


class SimulatedOutcomes(SpecModel):
    """Demo only: outcomes delivered some days after the decision, to a source of their own."""

    source: Identifier = Field(
        description="The source whose landing files receive the outcomes, one file per day they are observed."
    )
    min_days: int = Field(default=1, ge=0)
    """Fewest days between a decision and its outcome."""
    max_days: int = Field(default=3, ge=0)
    """Most days between a decision and its outcome (each decision's delay is uniform in between)."""

    @model_validator(mode="after")
    def _ordered(self) -> SimulatedOutcomes:
        if self.max_days < self.min_days:
            raise ValueError(f"max_days ({self.max_days}) must be >= min_days ({self.min_days})")
        return self


class SimulationSpec(SpecModel):
    """Demo only: how the simulator turns a bundled real dataset into daily batches."""

    dataset: Literal["german_credit", "adult"] = Field(
        description="The bundled real data resampled into daily batches (German Credit, or Adult census income)."
    )
    source: Identifier = Field(description="The source whose landing files the simulator writes.")
    rows_per_day: int = Field(default=3000, ge=1, le=10_000_000)
    """Expected rows of a daily batch (Poisson)."""
    seed: int = 0
    """Seed; with the date it fixes a batch."""
    drift_from: dt.date | None = Field(
        default=None,
        description="From this date on, batches drift (three times as many people under 30; German Credit: larger loans).",
    )
    rollout: SimulatedRollout | None = None
    """A planted rollout for the causal estimate."""
    outcomes: SimulatedOutcomes | None = None
    """Outcomes delivered late to their own source (the daily batches then leave the outcome empty)."""
    unfair_retrain: bool = Field(
        default=False,
        description="German Credit only: `make demo` then retrains a deliberately unfair version (sees sex, "
        "learned from outcomes degraded for women) to show the rollback.",
    )

    @model_validator(mode="after")
    def _unfair_needs_german_credit(self) -> SimulationSpec:
        if self.unfair_retrain and self.dataset != "german_credit":
            raise ValueError("unfair_retrain is built for the german_credit dataset only")
        return self


class SparkEngineSpec(SpecModel):
    """Where the Spark engine runs and keeps the tables of the SQL models."""

    master: NonEmptyText = "local[*]"
    """`spark.master`; the environment variable `IMPACT_ASSETS_SPARK_MASTER` overrides it for a deployment."""
    warehouse: NonEmptyText = "{state_dir}/spark-warehouse"
    """Folder or URI (`file:`, `hdfs:`, `s3a:`...) holding the Parquet files of the SQL models and the predictions, one folder per day."""
    conf: dict[NonEmptyText, str | int | float | bool] = Field(default={})
    """Further Spark settings, e.g. `spark.driver.memory`."""


class EngineSpec(SpecModel):
    """Which engine runs the row-level steps: DuckDB in the Dagster process, or a Spark cluster."""

    kind: Literal["duckdb", "spark"] = "duckdb"
    """`duckdb` (default) or `spark`; results land in the DuckDB contract tables either way."""
    spark: SparkEngineSpec = SparkEngineSpec()
    """Spark settings, used when `kind` is `spark`."""
