"""One assessment's ``dg.Definitions``: its assets, jobs, schedules, sensors and resources, merged
with the others' into one code location.

Asset keys are prefixed by the assessment id and all assets of an assessment form one group:

* ``<id>/<source>`` — raw files, external assets; their per-partition data versions are reported
  as observations by the SQL models that read them;
* ``<id>/<subfolders>/<model>`` — one per ``dbt_like_sql`` model;
* ``<id>/predictions`` — scores of the registry's latest model version (when the spec has a registry);
* ``<id>/group_metrics``, ``<id>/disparities``, the analytics, ``<id>/impact_register_snapshot``,
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
    release_job_name,
)
from impact_assets.orchestration._data_assets import predictions_asset, source_specs, sql_asset
from impact_assets.orchestration._metric_assets import analytics_assets, fairness_assets
from impact_assets.orchestration._register_assets import report_asset, snapshot_asset
from impact_assets.orchestration._release_assets import release_assets
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.settings import ProjectPaths


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
    snapshot = snapshot_asset(
        assessment, keys, partitions, [a.key for a in [*fairness, *analytics]]
    )
    assets += [snapshot, report_asset(assessment, keys, partitions, snapshot.key)]
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
    schedules, sensors = build_automation(
        assessment,
        job,
        partitions,
        {name: keys.table(name) for name in spec.sources},
        keys.result("impact_register_snapshot"),
        [keys.result("release_decision")],
        keys.table(PREDICTIONS_TABLE),
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job, release_job],
        schedules=schedules,
        sensors=sensors,
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
