"""End to end against a running Dagster: `dg dev` (webserver and daemon) on a free local port.

Checks over GraphQL that the definitions are loaded, then registers a new model version and waits for
the model-version sensor's run to succeed and write a register snapshot for that version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
import yaml

from impact_assets import ProjectPaths, discover_assessments
from impact_assets.cli import DAGSTER_YAML, simulate_days, train_version

from .conftest import REPO

pytestmark = pytest.mark.slow
STARTUP_SECONDS = 180
RUN_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _wait(condition, seconds: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"dg dev exited ({process.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"timed out after {seconds} s waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def project_state(tmp_path: Path) -> ProjectPaths:
    """The demo assessment with a 5 s sensor interval, yesterday's batch and model version 1."""
    assessments = tmp_path / "assessments"
    assessments.mkdir()
    spec = yaml.safe_load((REPO / "assessments" / "credit_scoring.yaml").read_text())
    spec["orchestration"] = {"sensor_interval_seconds": 5}
    (assessments / "credit_scoring.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    )
    paths = ProjectPaths(
        project_dir=REPO,
        assessments_dir=assessments,
        sql_dir=REPO / "dbt_like_sql",
        state_dir=tmp_path / "state",
    )
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, [dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)])
    train_version(assessment)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return paths


def test_model_version_sensor_launches_a_run_under_dg_dev(
    project_state: ProjectPaths, tmp_path: Path
):
    dg_cli = Path(sys.executable).with_name("dg")
    if not dg_cli.exists():
        dg_cli = Path(shutil.which("dg") or "dg")
    port = _free_port()
    log = tmp_path / "dg_dev.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "IMPACT_ASSETS_HOME": str(project_state.state_dir),
        "IMPACT_ASSETS_ASSESSMENTS_DIR": str(project_state.assessments_dir),
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(dg_cli), "dev", "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        repos = _wait(
            lambda: _graphql(
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
        ):
            assert sensors[f"credit_scoring__{name}"] == "RUNNING"
        assert sensors["impact_assets__lineage_sensor"] == "RUNNING"
        nodes = _graphql(
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
            "approval_parity_sex_within_thresholds",
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
            runs = _graphql(port, query)["runsOrError"]["results"]
            return (
                runs
                if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
                else None
            )

        runs = _wait(finished, RUN_SECONDS, f"the run of model version {version}", process, log)
        assert [r["status"] for r in runs] == ["SUCCESS"]

        # The source sensor recorded yesterday's batch as landed; the freshness daemon finds it fresh.
        def freshness():
            found = {
                "/".join(n["assetKey"]["path"]): (n["freshnessStatusInfo"] or {}).get(
                    "freshnessStatus"
                )
                for n in _graphql(
                    port,
                    "{ assetNodes { assetKey { path } freshnessStatusInfo { freshnessStatus } } }",
                )["assetNodes"]
            }
            wanted = ("credit_scoring/raw_applications", "credit_scoring/predictions")
            return found if all(found.get(k) == "HEALTHY" for k in wanted) else None

        _wait(freshness, RUN_SECONDS, "fresh sources and predictions", process, log)

        # The lineage sensor delivers the run's OpenLineage events (default: the JSON-lines file).
        events = project_state.state_dir / "lineage" / "events.jsonl"

        def delivered():
            text = events.read_text() if events.exists() else ""
            return runs[0]["runId"] in text and '"eventType": "COMPLETE"' in text

        _wait(delivered, RUN_SECONDS, "the run's lineage events", process, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with duckdb.connect(str(project_state.database), read_only=True) as conn:
        snapshots = conn.execute(
            "SELECT model_version, run_id FROM impact.register_snapshots WHERE model_version = ?",
            [version],
        ).fetchall()
    assert runs[0]["runId"] in {run_id for _, run_id in snapshots}
