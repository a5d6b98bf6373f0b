"""Schedule and sensors, evaluated with Dagster's own test contexts on real files and a real instance."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from impact_assets import ProjectPaths, assessment_job_name, build_definitions, discover_assessments
from impact_assets.cli import simulate_days, train_version
from impact_assets.orchestration._automation import schedule_partition

from .conftest import DAYS, VENDOR_ROWS, vendor_project


def _defs(paths: ProjectPaths) -> dg.Definitions:
    return build_definitions(paths)


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return next(s for s in defs.sensors if s.name == name)


@pytest.mark.parametrize(
    ("scheduled", "timezone", "expected"),
    [
        (dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC), "UTC", "2026-03-09"),
        # 22:00 in New York is already the next day in UTC: the previous UTC day is the 10th
        (dt.datetime(2026, 3, 10, 22, 0, tzinfo=ZoneInfo("America/New_York")), "UTC", "2026-03-10"),
        # 01:00 in Tokyo is still the previous day in UTC
        (dt.datetime(2026, 3, 10, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo")), "UTC", "2026-03-08"),
        # partitions in Tokyo time: the day before the 10th there is the 9th
        (dt.datetime(2026, 3, 10, 1, 0, tzinfo=ZoneInfo("Asia/Tokyo")), "Asia/Tokyo", "2026-03-09"),
    ],
)
def test_schedule_assesses_the_previous_day_across_timezones(scheduled, timezone, expected):
    assert schedule_partition(scheduled, timezone) == expected


def test_nightly_schedule_requests_yesterday(demo_state: ProjectPaths):
    defs = _defs(demo_state)
    (schedule,) = defs.schedules
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC),
            repository_def=defs.get_repository_def(),
        )
        (request,) = schedule.evaluate_tick(context).run_requests
    assert (request.partition_key, request.run_key) == ("2026-03-03", "nightly:2026-03-03")


def test_data_sensor_requests_each_changed_partition_once(demo_paths: ProjectPaths):
    (assessment,) = discover_assessments(demo_paths)
    sensor = _sensor(_defs(demo_paths), "credit_scoring__source_data_sensor")
    with dg.instance_for_test() as instance:
        repo = _defs(demo_paths).get_repository_def()
        first = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, repository_def=repo)
        )
        assert sorted(r.partition_key for r in first.run_requests) == [d.isoformat() for d in DAYS]
        assert len(first.asset_events) == len(DAYS)
        unchanged = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, repository_def=repo)
        )
        assert unchanged.run_requests == []
        # a corrected batch for one day: exactly one run for that day
        simulate_days(
            assessment.__class__(
                assessment.spec.model_copy(
                    update={
                        "simulation": assessment.spec.simulation.model_copy(update={"seed": 99})
                    }
                ),
                assessment.source,
                assessment.paths,
                assessment.sql,
            ),
            [DAYS[1]],
            overwrite=True,
        )
        corrected = sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=unchanged.cursor or first.cursor, repository_def=repo
            )
        )
        assert [r.partition_key for r in corrected.run_requests] == [DAYS[1].isoformat()]
        assert corrected.run_requests[0].run_key != first.run_requests[1].run_key
        assert corrected.run_requests[0].tags["impact_assets/trigger"] == "source_data"
        # a late batch for a new day
        simulate_days(assessment, [DAYS[1] + dt.timedelta(days=1)])
        late = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=corrected.cursor, repository_def=repo)
        )
        assert [r.partition_key for r in late.run_requests] == [
            (DAYS[1] + dt.timedelta(days=1)).isoformat()
        ]


def test_data_sensor_skips_first_sight_of_assessed_partitions(demo_paths: ProjectPaths):
    defs = _defs(demo_paths)
    sensor = _sensor(defs, "credit_scoring__source_data_sensor")
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("credit_scoring"))
            .execute_in_process(partition_key=DAYS[0].isoformat(), instance=instance)
            .success
        )
        result = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        )
    assert [r.partition_key for r in result.run_requests] == [DAYS[1].isoformat()]


def test_model_sensor_requests_one_run_per_new_version(demo_paths: ProjectPaths):
    (assessment,) = discover_assessments(demo_paths)
    defs = _defs(demo_paths)
    sensor = _sensor(defs, "credit_scoring__model_version_sensor")
    repo = defs.get_repository_def()
    with dg.instance_for_test() as instance:
        seen = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor="1", repository_def=repo)
        )
        assert seen.run_requests == [] and "already assessed" in seen.skip_message
        version = train_version(assessment, seed_offset=5)
        new = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor="1", repository_def=repo)
        )
    (request,) = new.run_requests
    assert new.cursor == version == "2"
    assert (
        request.tags["impact_assets/model_version"] == "2"
        and request.tags["impact_assets/trigger"] == "model_version"
    )
    assert request.run_key == f"model:2:{request.partition_key}"


def test_model_sensor_first_sight_of_a_version_that_scored_the_day_is_no_retrain(
    demo_paths: ProjectPaths,
):
    (assessment,) = discover_assessments(demo_paths)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    simulate_days(assessment, [yesterday])
    defs = _defs(demo_paths)
    sensor = _sensor(defs, "credit_scoring__model_version_sensor")
    repo = defs.get_repository_def()

    def first_tick(instance: dg.DagsterInstance) -> dg.SensorExecutionData:
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo))

    with dg.instance_for_test() as instance:
        (unassessed,) = first_tick(instance).run_requests  # a new deployment assesses its model
        assert unassessed.tags["impact_assets/model_version"] == "1"
        assert (
            defs.resolve_job_def(assessment_job_name("credit_scoring"))
            .execute_in_process(partition_key=yesterday.isoformat(), instance=instance)
            .success
        )
        seen = first_tick(instance)
        assert seen.run_requests == [] and seen.cursor == "1"
        assert f"already assessed {yesterday}" in seen.skip_message
        version = train_version(assessment, seed_offset=5)
        (retrain,) = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=seen.cursor, repository_def=repo)
        ).run_requests
    assert retrain.tags["impact_assets/model_version"] == version == "2"


def test_run_failure_becomes_a_governance_action(project: ProjectPaths):
    vendor_project(project, VENDOR_ROWS)
    defs = _defs(project)
    sensor = _sensor(defs, "vendor_scores__run_failure_sensor")
    # the SQL breaks after definitions loaded: the run fails in DuckDB
    (project.project_dir / "data" / "vendor.csv").write_text("id,day,region\n1,2026-03-02,north\n")
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance, raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources=defs.resources,
        ).for_run_failure()
        sensor(context)
    with duckdb.connect(str(project.database), read_only=True) as conn:
        run = conn.execute("SELECT status, partition_key FROM impact.runs").fetchall()
        action = conn.execute(
            "SELECT entry_id, owner, status FROM impact.governance_actions_current"
        ).fetchall()
        events = conn.execute(
            "SELECT event, detail FROM impact.governance_action_events"
        ).fetchall()
    assert run == [("failed", "2026-03-02")]
    assert action == [("__assessment_run__", "risk@lender.example", "open")]
    assert events[0][0] == "run_failed" and result.run_id in events[0][1]
