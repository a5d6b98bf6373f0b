"""When assessments run: the nightly schedule, sensors for new data and new model versions, run failures.

* **Nightly schedule** (cron and timezone from the spec): assesses the previous day, in the partitions'
  timezone, of the scheduled time.
* **Source data sensor**: fingerprints every source's rows per partition straight from the files; a
  partition whose fingerprint changed since the last evaluation (a late or corrected batch) is assessed
  once: the run key holds the fingerprints, so the same data never runs twice. It records each landed
  or changed batch as a materialization of the (external) source asset, with the fingerprint as its data
  version, so the source's freshness policy sees when data last arrived. A partition seen for the first
  time is assessed unless the instance already has its register snapshot.
* **Model version sensor**: a new usable version in the registry (a retrain) triggers the assessment of
  the latest complete partition, tagged with the version; once per version.
* **Outcomes sensor** (with outcomes that arrive late): a cohort that has matured, or whose known
  outcomes changed since its outcome-based results were computed (late, new or corrected outcomes),
  gets one run of the outcomes job on its last day: its outcome metrics, the analytics that read
  outcomes and a new register snapshot (reason ``outcomes arrived``); decision-time results stay.
  The run key holds the outcomes' fingerprint, so the same outcomes never run twice.
* **Run failure sensor**: a failed assessment run becomes a governance action for the owners.

The release decision uses declarative automation instead (``AutomationCondition.eager()``): it is a
pure function of the newest register snapshot of its partition, so it should follow every new snapshot,
whoever produced it; promotion stays a deliberate step (the release job).
"""

import datetime
import hashlib
import json
from zoneinfo import ZoneInfo

import dagster as dg

from impact_assets import pipeline
from impact_assets.assessment import Assessment
from impact_assets.orchestration._common import DATA_VERSION_TAG, SNAPSHOT_REASON_TAG
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.storage import migrate

__all__ = ["build_automation", "schedule_partition"]

TRIGGER_TAG = "impact_assets/trigger"
MODEL_TAG = "impact_assets/model_version"
# a sensor tick must not outlast its own timeout waiting for a run to release the results file
SENSOR_LOCK_TIMEOUT = 30.0


def schedule_partition(scheduled: datetime.datetime, partitions_timezone: str) -> str:
    """The partition a run scheduled at ``scheduled`` assesses: the day before, in the partitions' timezone."""
    local = scheduled.astimezone(ZoneInfo(partitions_timezone))
    return (local.date() - datetime.timedelta(days=1)).isoformat()


def build_automation(
    assessment: Assessment,
    job,  # what dg.define_asset_job returns
    partitions: dg.DailyPartitionsDefinition,
    source_keys: dict[str, dg.AssetKey],
    snapshot_key: dg.AssetKey,
    automated: list[dg.AssetKey],
    predictions_key: dg.AssetKey,
    outcomes_job=None,  # what dg.define_asset_job returns, when outcomes arrive late
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """Schedule and sensors of one assessment (all running by default; their run keys make them idempotent)."""
    spec = assessment.spec
    interval = spec.orchestration.sensor_interval_seconds

    @dg.schedule(
        name=f"{spec.id}__nightly",
        cron_schedule=spec.orchestration.schedule.cron,
        execution_timezone=spec.orchestration.schedule.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Assess the previous day of {spec.title}.",
    )
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        partition = schedule_partition(context.scheduled_execution_time, spec.partitions.timezone)
        return dg.RunRequest(
            partition_key=partition, run_key=f"nightly:{partition}", tags={TRIGGER_TAG: "schedule"}
        )

    def _valid(partition: str, last: str | None) -> bool:
        return last is not None and spec.partitions.start_date.isoformat() <= partition <= last

    @dg.sensor(
        name=f"{spec.id}__source_data_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-assesses a partition once when its source data change (late or corrected batches).",
    )
    def source_data(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        prints = pipeline.file_fingerprints(assessment)
        seen = json.loads(context.cursor) if context.cursor else {}
        last = partitions.get_last_partition_key()
        assessed = context.instance.get_materialized_partitions(snapshot_key)
        changed: dict[str, list[str]] = {}
        events = []
        for source, by_partition in prints.items():
            for partition, fingerprint in by_partition.items():
                before = seen.get(source, {}).get(partition)
                if before == fingerprint or not _valid(partition, last):
                    continue
                # A materialization (not an observation) of the external source: a batch landed,
                # which is what the source's freshness policy measures.
                events.append(
                    dg.AssetMaterialization(
                        asset_key=source_keys[source],
                        partition=partition,
                        tags={DATA_VERSION_TAG: fingerprint},
                        description="batch landed" if before is None else "batch changed",
                    )
                )
                if before is None and partition in assessed:
                    continue  # first sight of data already assessed
                changed.setdefault(partition, []).append(source)
        requests = []
        for partition in sorted(changed):
            digest = hashlib.sha256(
                json.dumps({s: prints[s].get(partition) for s in sorted(prints)}).encode()
            ).hexdigest()[:16]
            requests.append(
                dg.RunRequest(
                    partition_key=partition,
                    run_key=f"data:{partition}:{digest}",
                    tags={
                        TRIGGER_TAG: "source_data",
                        "impact_assets/sources": ",".join(changed[partition]),
                    },
                )
            )
        return dg.SensorResult(
            run_requests=requests, asset_events=events, cursor=json.dumps(prints, sort_keys=True)
        )

    sensors: list[dg.SensorDefinition] = [source_data]
    registry = assessment.registry
    if registry is not None:

        def _scored_with(instance: dg.DagsterInstance, partition: str, version: str) -> bool:
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=predictions_key, asset_partitions=[partition]),
                limit=1,
            ).records
            return bool(found) and found[0].asset_materialization.tags.get(MODEL_TAG) == version

        @dg.sensor(
            name=f"{spec.id}__model_version_sensor",
            job=job,
            minimum_interval_seconds=interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Re-assesses the latest complete day when a new model version appears in the registry (a retrain).",
        )
        def model_version(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
            if not registry.versions():
                return dg.SkipReason(f"no model version in {registry.path}")
            version = registry.latest(usable=True).version
            if context.cursor == version:
                return dg.SkipReason(f"model version {version} already assessed")
            partition = partitions.get_last_partition_key()
            if partition is None:
                return dg.SkipReason("no complete partition yet")
            if context.cursor is None and _scored_with(context.instance, partition, version):
                # first sight of a version that already scored the day (as on a new deployment)
                return dg.SensorResult(
                    skip_reason=f"model version {version} already assessed {partition}",
                    cursor=version,
                )
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        partition_key=partition,
                        run_key=f"model:{version}:{partition}",
                        tags={TRIGGER_TAG: "model_version", MODEL_TAG: version},
                    )
                ],
                cursor=version,
            )

        sensors.append(model_version)

    if outcomes_job is not None and spec.outcomes is not None and spec.outcomes.sensor:

        @dg.sensor(
            name=f"{spec.id}__outcomes_sensor",
            job=outcomes_job,
            minimum_interval_seconds=interval,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Re-assesses a cohort's outcome-based results once when it matures or its outcomes arrive or change.",
        )
        def outcomes(
            context: dg.SensorEvaluationContext, impact_duckdb: ResultsDatabase
        ) -> dg.SensorResult:
            # the resource's connection settings (memory limit, threads) bound the plan's scan too
            with impact_duckdb.get_connection(lock_timeout=SENSOR_LOCK_TIMEOUT) as conn:
                pipeline.prepare(conn, assessment)
                due = pipeline.outcome_reassessments(
                    conn, assessment, last_partition=partitions.get_last_partition_key()
                )
            assessed = context.instance.get_materialized_partitions(snapshot_key)
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        partition_key=partition,
                        run_key=f"outcomes:{cohort}:{fingerprint}",
                        tags={
                            TRIGGER_TAG: "outcomes",
                            SNAPSHOT_REASON_TAG: "outcomes arrived",
                            "impact_assets/cohort": cohort,
                        },
                    )
                    for cohort, partition, fingerprint in due
                    if partition in assessed
                ]
            )

        sensors.append(outcomes)

    @dg.run_failure_sensor(
        name=f"{spec.id}__run_failure_sensor",
        monitored_jobs=[job, *([outcomes_job] if outcomes_job is not None else [])],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records a failed assessment run as a governance action for the assessment's owners.",
    )
    def run_failure(context: dg.RunFailureSensorContext, impact_duckdb: ResultsDatabase) -> None:
        run = context.dagster_run
        with impact_duckdb.get_connection(lock_timeout=SENSOR_LOCK_TIMEOUT) as conn:
            migrate(conn)
            pipeline.record_run_failure(
                conn,
                assessment,
                run_id=run.run_id,
                partition_key=run.tags.get("dagster/partition"),
                message=context.failure_event.message or "run failed",
            )

    sensors.append(run_failure)
    sensors.append(
        dg.AutomationConditionSensorDefinition(
            f"{spec.id}__automation",
            target=dg.AssetSelection.assets(*automated),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=interval,
            description="Evaluates the declarative automation of this assessment: a new register snapshot gets a release decision.",
        )
    )
    return [nightly], sensors
