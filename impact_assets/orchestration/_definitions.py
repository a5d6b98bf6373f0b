"""One assessment's ``dg.Definitions``: its assets, jobs, schedules, sensors and resources, merged
with the others' into one code location.

Asset keys are prefixed by the assessment id and all assets of an assessment form one group:

* ``<id>/<source>`` — raw files, external assets; their per-partition data versions are reported
  as observations by the SQL models that read them;
* ``<id>/<subfolders>/<model>`` — one per ``dbt_like_sql`` model;
* ``<id>/predictions`` — scores of the registry's latest model version (when the spec has a registry);
* ``<id>/group_metrics``, ``<id>/disparities``, the analytics, ``<id>/outcome_metrics`` (when
  outcomes arrive late), ``<id>/impact_register_snapshot``,
  ``<id>/impact_report``, ``<id>/release_decision`` and ``<id>/promoted_model``.
"""

import functools
from collections.abc import Sequence

import dagster as dg

from impact_assets.assessment import Assessment
from impact_assets.modeling import PREDICTIONS_TABLE
from impact_assets.orchestration._automation import build_automation
from impact_assets.orchestration._common import (
    DUCKDB_RESOURCE_KEY,
    AssetKeys,
    assessment_job_name,
    outcomes_job_name,
    release_job_name,
)
from impact_assets.orchestration._data_assets import predictions_asset, source_specs, sql_asset
from impact_assets.orchestration._metric_assets import analytics_assets, fairness_assets
from impact_assets.orchestration._outcome_assets import outcome_assets
from impact_assets.orchestration._oversight import oversight_definitions
from impact_assets.orchestration._register_assets import report_asset, snapshot_asset
from impact_assets.orchestration._release_assets import release_assets
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.outcomes import reads_column
from impact_assets.settings import ProjectPaths


def outcome_reading(assessment: Assessment) -> set[str]:
    """The analytics assets whose results depend on outcomes: KPIs when a KPI or the cost-benefit
    reads the label, the causal estimates when an outcome expression does."""
    spec = assessment.spec
    label = spec.bindings.label
    names = set()
    if spec.analytics.cost_benefit is not None or any(
        reads_column(k.sql, label) for k in spec.analytics.kpis
    ):
        names.add("kpis")
    if any(reads_column(c.outcome, label) for c in spec.analytics.causal):
        names.add("causal_estimates")
    return names


@functools.cache
def _duckdb_resource(database: str) -> ResultsDatabase:
    """One resource object per results database: assessments of one project share it, and
    ``Definitions.merge`` accepts a resource key twice only when it is the same object."""
    return ResultsDatabase(database=database)


def build_assessment_definitions(assessment: Assessment) -> dg.Definitions:
    """Assets, checks, job and resources of one assessment.

    Args:
        assessment: A loaded assessment (see :func:`impact_assets.load_assessment`).

    Returns:
        Definitions to merge with others; the DuckDB resource points at the installation's database.
    """
    spec = assessment.spec
    keys = AssetKeys(assessment)
    partitions = dg.DailyPartitionsDefinition(
        start_date=spec.partitions.start_date.isoformat(), timezone=spec.partitions.timezone
    )
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = list(
        source_specs(assessment, keys, partitions)
    )
    assets += [sql_asset(assessment, keys, partitions, name) for name in assessment.sql.order]
    if spec.model.registry is not None:
        assets.append(predictions_asset(assessment, keys, partitions))
    fairness = fairness_assets(assessment, keys, partitions)
    assets += fairness
    analytics = analytics_assets(assessment, keys, partitions)
    assets += analytics
    awaited = outcome_assets(assessment, keys, partitions)
    assets += awaited
    snapshot = snapshot_asset(
        assessment, keys, partitions, [a.key for a in [*fairness, *analytics, *awaited]]
    )
    report = report_asset(assessment, keys, partitions, snapshot.key)
    assets += [snapshot, report]
    release = release_assets(assessment, keys, partitions)
    assets += release
    release_selection = dg.AssetSelection.assets(*release)
    job = dg.define_asset_job(
        assessment_job_name(spec.id),
        selection=dg.AssetSelection.groups(spec.id).materializable() - release_selection,
        description=f"Assess one daily partition of {spec.title}: SQL models, scoring, quality checks, group metrics, register snapshot.",
        tags={"impact_assets/assessment": spec.id},
    )
    release_job = dg.define_asset_job(
        release_job_name(spec.id),
        selection=release_selection,
        description="Decide on the release of the assessed model version (approve / hold / rollback) and promote it when approved.",
        tags={"impact_assets/assessment": spec.id},
    )
    jobs = [job, release_job]
    outcomes_job = None
    if awaited:
        # what outcomes change: the cohort's metrics, the analytics that read outcomes, the register
        reading = [a.key for a in analytics if a.key.path[-1] in outcome_reading(assessment)]
        outcomes_job = dg.define_asset_job(
            outcomes_job_name(spec.id),
            selection=dg.AssetSelection.assets(*awaited, *reading, snapshot, report),
            description="Re-assess the outcome-based results of a cohort when its outcomes arrive or change; decision-time results stay as they are.",
            tags={"impact_assets/assessment": spec.id},
        )
        jobs.append(outcomes_job)
    schedules, sensors = build_automation(
        assessment,
        job,
        partitions,
        {name: keys.table(name) for name in spec.sources},
        keys.result("impact_register_snapshot"),
        [keys.result("release_decision")],
        keys.table(PREDICTIONS_TABLE),
        outcomes_job,
    )
    decision_jobs, oversight_sensors = oversight_definitions(
        assessment, keys, spec.orchestration.sensor_interval_seconds
    )
    return dg.Definitions(
        assets=assets,
        jobs=[*jobs, *decision_jobs],
        schedules=schedules,
        sensors=[*sensors, *oversight_sensors],
        resources={DUCKDB_RESOURCE_KEY: _duckdb_resource(str(assessment.paths.database))},
    )


def definitions_for(assessments: Sequence[Assessment], paths: ProjectPaths) -> dg.Definitions:
    """Definitions of ``assessments``, merged into one code location, with the sensor that delivers
    their OpenLineage events.

    Runs execute their steps in one process: every step writes the same DuckDB file, which takes one
    writing process at a time, so separate step processes would only queue on its lock (and pay their
    start-up each).
    """
    from impact_assets.lineage import lineage_sensor

    return dg.Definitions.merge(
        *(build_assessment_definitions(a) for a in assessments),
        dg.Definitions(
            sensors=[lineage_sensor(assessments, paths)], executor=dg.in_process_executor
        ),
    )
