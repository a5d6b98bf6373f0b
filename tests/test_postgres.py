"""A production Dagster instance: run, event-log and schedule storage in a real PostgreSQL server.

The test starts Debian's PostgreSQL on a free local port in a temporary data directory (as the
``postgres`` user when run as root, since ``initdb`` refuses root), points a Dagster instance at it
through ``dagster.yaml``, runs an assessment partition and a tick of the nightly schedule through that
instance, reads the run, its materializations and the register snapshot back, and stops the server.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.ref import InstanceRef

from impact_assets import ProjectPaths, assessment_job_name, build_definitions

from ._servers import free_port, start_group, stop_group, stop_strays, wait_for
from .conftest import REPO, VENDOR_ROWS, vendor_project

pytestmark = pytest.mark.postgres


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres_port() -> Iterator[int]:
    """A PostgreSQL server of its own, stopped (and its data removed) after the test."""
    binaries = _binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server is not installed (Debian package postgresql)")
        pytest.skip("PostgreSQL's server is not installed (Debian package postgresql)")
    owner: list[str] = []
    # not under pytest's tmp folder, which only root may enter
    folder = Path(tempfile.mkdtemp(prefix="impact-assets-pg-"))
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*owner, *command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command[0]} failed: {done.stdout}{done.stderr}"

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "dagster")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        run(
            str(binaries / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "dagster",
            "dagster",
        )
        yield port
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder)


INSTANCE_YAML = """
storage:
  postgres:
    postgres_db:
      hostname: 127.0.0.1
      port: {port}
      db_name: dagster
      username: dagster
      password: {{env: DAGSTER_PG_PASSWORD}}
      scheme: postgresql+psycopg2
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def test_an_assessment_runs_on_a_dagster_instance_with_postgres_storage(
    project: ProjectPaths, tmp_path: Path, postgres_port: int, monkeypatch: pytest.MonkeyPatch
):
    paths = vendor_project(project, VENDOR_ROWS)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # the instance configuration of the README's "Deploying" section (the server trusts local users)
    (home / "dagster.yaml").write_text(INSTANCE_YAML.format(port=postgres_port))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-checked-by-a-trusting-server")
    defs = build_definitions(paths)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance
        )
        assert result.success
        (schedule,) = defs.schedules
        tick = schedule.evaluate_tick(
            dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC),
                repository_def=defs.get_repository_def(),
            )
        )
    # read back through a new instance on the same server: what the UI and the daemon would see
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        run = instance.get_run_by_id(result.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == "2026-03-02"
        snapshot = instance.get_latest_materialization_event(
            dg.AssetKey(["vendor_scores", "impact_register_snapshot"])
        )
        assert snapshot.run_id == result.run_id
        assert snapshot.asset_materialization.partition == "2026-03-02"
    assert [r.partition_key for r in tick.run_requests] == ["2026-03-03"]
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        rows = conn.execute(
            "SELECT s.run_id, s.partition_key, e.value, e.status FROM impact.register_snapshots s "
            "JOIN impact.register_entries e USING (snapshot_id)"
        ).fetchall()
    assert rows == [(result.run_id, "2026-03-02", 0.5, "breach")]


@pytest.mark.slow
def test_the_daemon_runs_the_sensors_on_postgres_storage(
    project: ProjectPaths, tmp_path: Path, postgres_port: int, monkeypatch: pytest.MonkeyPatch
):
    """``dagster-daemon`` on the PostgreSQL instance: the data sensor asks for both days with data,
    the run queue launches them, and both runs write their register snapshot."""
    paths = vendor_project(project, VENDOR_ROWS)
    spec = paths.assessments_dir / "vendor.yaml"
    spec.write_text(spec.read_text() + "orchestration: {sensor_interval_seconds: 5}\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML.format(port=postgres_port))
    log = tmp_path / "daemon.log"
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-checked-by-a-trusting-server")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_ASSETS_PROJECT_DIR": str(paths.project_dir),
    }
    daemon = start_group(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        log=log,
    )

    def finished_runs() -> list[dg.DagsterRun] | None:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            runs = instance.get_runs(
                dg.RunsFilter(
                    job_name=assessment_job_name("vendor_scores"),
                    statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                )
            )
        return runs if len(runs) >= 2 else None

    try:
        runs = wait_for(finished_runs, 300, "two sensor-launched runs to finish", daemon, log)
    finally:
        stop_group(daemon)
        stop_strays(str(home))  # the daemon's code server, in a session of its own
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert {r.tags["impact_assets/trigger"] for r in runs} == {"source_data"}
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        written = conn.execute(
            "SELECT partition_key, run_id FROM impact.register_snapshots ORDER BY partition_key"
        ).fetchall()
    assert written == sorted((r.tags["dagster/partition"], r.run_id) for r in runs)
