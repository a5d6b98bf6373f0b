"""End to end against a running Dagster: `dg dev` (webserver and daemon) on a free local port.

Checks over GraphQL that the definitions are loaded, then registers a new model version and waits for
the model-version sensor's run to succeed and write a register snapshot for that version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from impact_assets import ProjectPaths, discover_assessments
from impact_assets.cli import DAGSTER_YAML, simulate_days, train_version

from ._servers import free_port, graphql, start_group, stop_group, wait_for
from .conftest import DEMO_SPEC, REPO, alone, assess

pytestmark = pytest.mark.slow
STARTUP_SECONDS = 180
RUN_SECONDS = 300


@pytest.fixture
def project_state(tmp_path: Path) -> ProjectPaths:
    """The demo assessment with a 5 s sensor interval, yesterday's batch and model version 1,
    yesterday assessed with it on the instance: at their first tick the sensors find nothing new.
    Age parity must reach 0.999 here, so yesterday's run opened a review action whose notice waits
    for the notifications sensor."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["orchestration"] = {"sensor_interval_seconds": 5}
    (age_parity,) = [e for e in spec["register"] if e["id"] == "approval_parity_age"]
    age_parity["thresholds"] = {"direction": "higher_is_better", "breach": 0.999}
    paths = alone(spec, tmp_path / "state")
    (assessment,) = discover_assessments(paths)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    simulate_days(assessment, [yesterday])
    train_version(assessment)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assess(paths, instance, [yesterday])
    return paths


def test_model_version_sensor_launches_a_run_under_dg_dev(
    project_state: ProjectPaths, tmp_path: Path
):
    dg_cli = Path(sys.executable).with_name("dg")
    if not dg_cli.exists():
        dg_cli = Path(shutil.which("dg") or "dg")
    port = free_port()
    log = tmp_path / "dg_dev.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "IMPACT_ASSETS_HOME": str(project_state.state_dir),
        "IMPACT_ASSETS_ASSESSMENTS_DIR": str(project_state.assessments_dir),
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
    }
    process = start_group(
        [str(dg_cli), "dev", "--port", str(port), "--host", "127.0.0.1"], cwd=REPO, env=env, log=log
    )
    try:
        repos = wait_for(
            lambda: graphql(
                port,
                "{ repositoriesOrError { ... on RepositoryConnection { nodes { schedules { name scheduleState { status } } "
                "sensors { name sensorState { status } } } } } }",
            )["repositoriesOrError"]["nodes"],
            STARTUP_SECONDS,
            "the code location to load",
            process,
            log,
        )
        sensors = {s["name"]: s["sensorState"]["status"] for r in repos for s in r["sensors"]}
        schedules = {s["name"]: s["scheduleState"]["status"] for r in repos for s in r["schedules"]}
        assert schedules == {"credit_scoring__nightly": "RUNNING"}
        for name in (
            "source_data_sensor",
            "model_version_sensor",
            "run_failure_sensor",
            "automation",
            "notifications_sensor",
        ):
            assert sensors[f"credit_scoring__{name}"] == "RUNNING"
        assert sensors["impact_assets__lineage_sensor"] == "RUNNING"
        nodes = graphql(
            port,
            "{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }",
        )["assetNodes"]
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {
            "credit_scoring/impact_register_snapshot",
            "credit_scoring/release_decision",
            "credit_scoring/marts/scored_applications",
        } <= keys
        checks = {c["name"] for n in nodes for c in (n["assetChecksOrError"].get("checks") or [])}
        assert {
            "approval_parity_sex",
            "score_values_are_between",
            "release_is_approved",
        } <= checks

        (assessment,) = discover_assessments(project_state)
        version = train_version(assessment, seed_offset=3)
        query = (
            '{ runsOrError(filter: {tags: [{key: "impact_assets/model_version", value: "'
            + version
            + '"}]}) '
            "{ ... on Runs { results { runId status } } } }"
        )

        def finished():
            runs = graphql(port, query)["runsOrError"]["results"]
            return (
                runs
                if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
                else None
            )

        runs = wait_for(finished, RUN_SECONDS, f"the run of model version {version}", process, log)
        assert [r["status"] for r in runs] == ["SUCCESS"]
        # the day and version 1 were assessed before: the sensors launched the retrain's run alone
        launched = graphql(
            port, "{ runsOrError { ... on Runs { results { runId jobName tags { key value } } } } }"
        )["runsOrError"]["results"]
        triggers = {
            r["runId"]: {t["key"]: t["value"] for t in r["tags"]}.get("impact_assets/trigger")
            for r in launched
            if r["jobName"] == "credit_scoring__assessment"
        }
        assert len(triggers) == 2 and triggers.pop(runs[0]["runId"]) == "model_version"
        assert list(triggers.values()) == [None]  # the run before dg dev started

        # The source sensor recorded yesterday's batch as landed; the freshness daemon finds it fresh.
        def freshness():
            found = {
                "/".join(n["assetKey"]["path"]): (n["freshnessStatusInfo"] or {}).get(
                    "freshnessStatus"
                )
                for n in graphql(
                    port,
                    "{ assetNodes { assetKey { path } freshnessStatusInfo { freshnessStatus } } }",
                )["assetNodes"]
            }
            wanted = ("credit_scoring/raw_applications", "credit_scoring/predictions")
            return found if all(found.get(k) == "HEALTHY" for k in wanted) else None

        wait_for(freshness, RUN_SECONDS, "fresh sources and predictions", process, log)

        # The lineage sensor delivers the run's OpenLineage events (default: the JSON-lines file).
        events = project_state.state_dir / "lineage" / "events.jsonl"

        def delivered():
            text = events.read_text() if events.exists() else ""
            return runs[0]["runId"] in text and '"eventType": "COMPLETE"' in text

        wait_for(delivered, RUN_SECONDS, "the run's lineage events", process, log)

        # The notifications sensor delivers the breaches' notices (default: the JSON-lines file).
        notices = project_state.state_dir / "notifications" / "notices.jsonl"

        def noticed():
            text = notices.read_text() if notices.exists() else ""
            found = [json.loads(line) for line in text.splitlines()]
            return [n for n in found if n["kind"] == "action_opened"]

        opened = wait_for(noticed, RUN_SECONDS, "the notices of the breaches", process, log)
        (action,) = [n for n in opened if n["entry_id"] == "approval_parity_age"]

        # An owner acknowledges the action from the launchpad: the decision job with typed run config.
        (repo,) = graphql(
            port,
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }",
        )["repositoriesOrError"]["nodes"]
        launched = graphql(
            port,
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } "
            "... on RunConfigValidationInvalid { errors { message } } } }",
            {
                "p": {
                    "selector": {
                        "repositoryName": repo["name"],
                        "repositoryLocationName": repo["location"]["name"],
                        "jobName": "credit_scoring__record_action_decision",
                    },
                    "runConfigData": {
                        "ops": {
                            "credit_scoring__record_action_decision_op": {
                                "config": {
                                    "action_id": action["action_id"],
                                    "decision": "acknowledge",
                                    "by": "Fair Lending Lead",
                                    "rationale": "seen at the morning review",
                                }
                            }
                        }
                    },
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        def decided():
            status = graphql(
                port, '{ runOrError(runId: "' + run_id + '") { ... on Run { status } } }'
            )["runOrError"]["status"]
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        assert wait_for(decided, RUN_SECONDS, "the decision run", process, log) == "SUCCESS"
        # the register snapshot asset shows the decision
        observed = graphql(
            port,
            '{ assetOrError(assetKey: {path: ["credit_scoring", "impact_register_snapshot"]}) '
            "{ ... on Asset { assetObservations(limit: 1) { description } } } }",
        )["assetOrError"]["assetObservations"]
        assert observed[0]["description"].startswith("Fair Lending Lead: acknowledge")
    finally:
        stop_group(process)
    with duckdb.connect(str(project_state.database), read_only=True) as conn:
        snapshots = conn.execute(
            "SELECT model_version, run_id FROM impact.register_snapshots WHERE model_version = ?",
            [version],
        ).fetchall()
    assert runs[0]["runId"] in {run_id for _, run_id in snapshots}
    with duckdb.connect(str(project_state.database), read_only=True) as conn:
        assert conn.execute(
            "SELECT status, acknowledged_by FROM impact.governance_actions_current WHERE action_id = ?",
            [action["action_id"]],
        ).fetchall() == [("acknowledged", "Fair Lending Lead")]
