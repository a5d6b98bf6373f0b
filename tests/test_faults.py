"""Faults: a run killed mid-snapshot, a database another process holds, a damaged database file, two
runs at once, the lineage backend down for several runs. Each runs real processes on real files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from impact_assets import ProjectPaths
from impact_assets.orchestration import RESULTS_POOL

from ._servers import wait_for
from .conftest import (
    REPO,
    VENDOR_ROWS,
    history,
    rows_of,
    run_partition,
    step_failure,
    vendor_project,
)

DAY1, DAY2 = "2026-03-02", "2026-03-03"


def _in_subprocess(paths: ProjectPaths, home: Path, day: str, *extra: str) -> subprocess.Popen:
    """``tests/_run_partition.py`` in a process of its own; its output goes to ``<home>/<day>.log``."""
    with (home / f"{day}.log").open("w") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests._run_partition",
                str(paths.project_dir),
                "vendor_scores",
                day,
                *extra,
            ],
            cwd=REPO,
            env={**os.environ, "DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def vendor(project: ProjectPaths) -> ProjectPaths:
    return vendor_project(project, VENDOR_ROWS)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    return folder


def test_kill_9_in_the_middle_of_a_snapshot_leaves_no_partial_snapshot(
    vendor: ProjectPaths, home: Path, tmp_path: Path
):
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert run_partition(vendor, instance, DAY1).success
    before = history(vendor.database)
    assert len(before["register_snapshots"]) == 1 and before["register_entries"]

    marker = tmp_path / "inside-the-snapshot-transaction"
    victim = _in_subprocess(vendor, home, DAY1, str(marker))
    try:
        wait_for(marker.exists, 180, "the snapshot write", victim, home / f"{DAY1}.log")
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
    finally:
        victim.kill()

    assert history(vendor.database) == before  # the killed snapshot left nothing behind
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = run_partition(vendor, instance, DAY1)
    assert result.success
    after = history(vendor.database)
    assert set(before["register_entries"]) <= set(after["register_entries"])
    assert sorted(r[1:3] for r in after["register_snapshots"]) == [(DAY1, 1), (DAY1, 2)]
    newest = next(r[0] for r in after["register_snapshots"] if r[2] == 2)
    entries = [r for r in after["register_entries"] if r[0] == newest]
    assert len(entries) == len(before["register_entries"])


@pytest.fixture
def holder(vendor: ProjectPaths):
    """Starts a process that opens the results database and holds it until told to stop."""
    started: list[subprocess.Popen] = []

    def start(seconds: float = 600) -> subprocess.Popen:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import duckdb, sys, time\n"
                f"conn = duckdb.connect({str(vendor.database)!r})\n"
                "print('holding', flush=True)\n"
                f"time.sleep({seconds})\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "holding"
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()


def test_a_database_held_by_another_process_is_retried_then_named(vendor, holder):
    with dg.instance_for_test() as instance:
        assert run_partition(vendor, instance, DAY1).success
        before = history(vendor.database)

        process = holder()
        began = time.monotonic()
        refused = run_partition(vendor, instance, DAY2, lock_timeout=1.0)
        waited = time.monotonic() - began
        assert not refused.success and waited >= 1.0
        message = step_failure(refused).step_failure_data.error.message
        assert f"the results database {vendor.database} is held by another process" in message
        assert f"(PID {process.pid})" in message and "still locked after" in message
        process.kill()
        process.wait(timeout=30)
        assert history(vendor.database) == before

        # held for 2 s: the default bounded retry waits it out
        holder(seconds=2)
        began = time.monotonic()
        assert run_partition(vendor, instance, DAY2).success
        assert time.monotonic() - began >= 1.5
    assert sorted(r[1] for r in history(vendor.database)["register_snapshots"]) == [DAY1, DAY2]


def test_a_damaged_database_file_is_refused_and_left_untouched(vendor: ProjectPaths):
    vendor.database.parent.mkdir(parents=True)
    vendor.database.write_bytes(b"not a duckdb file\n" * 1000)
    with dg.instance_for_test() as instance:
        result = run_partition(vendor, instance, DAY1)
    assert not result.success
    message = step_failure(result).step_failure_data.error.message
    assert f"the results database {vendor.database} cannot be opened" in message
    assert "not a valid DuckDB database file" in message
    assert vendor.database.read_bytes() == b"not a duckdb file\n" * 1000


@pytest.mark.parametrize("pool_limit", [None, 1], ids=["file-lock-retries", "dagster-pool"])
def test_two_runs_at_once_lose_and_mix_no_rows(
    vendor: ProjectPaths, home: Path, tmp_path: Path, pool_limit: int | None
):
    # the same two days run one after the other in another project: the reference
    sequential = vendor_project(
        ProjectPaths.for_project(shutil.copytree(vendor.project_dir, tmp_path / "sequential")),
        VENDOR_ROWS,
    )
    with dg.instance_for_test() as instance:
        assert (
            run_partition(sequential, instance, DAY1).success
            and run_partition(sequential, instance, DAY2).success
        )

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        if pool_limit:
            instance.event_log_storage.set_concurrency_slots(RESULTS_POOL, pool_limit)
    runs = [_in_subprocess(vendor, home, day) for day in (DAY1, DAY2)]
    codes = [run.wait(timeout=300) for run in runs]
    assert codes == [0, 0], [(home / f"{day}.log").read_text()[-3000:] for day in (DAY1, DAY2)]

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        records = instance.get_run_records()
        spans = [(r.start_time, r.end_time) for r in records]
        partition_of = {
            r.dagster_run.run_id: r.dagster_run.tags["dagster/partition"] for r in records
        }
    assert max(s for s, _ in spans) < min(e for _, e in spans), "the two runs did not overlap"

    database = vendor.database
    for table in ("group_metrics", "disparities", "register_snapshots", "quality_results"):
        for run_id, partition in rows_of(database, table, "DISTINCT run_id, partition_key"):
            assert partition_of[run_id] == partition, (table, run_id)
    for table, columns in {
        "group_metrics": "partition_key, feature_set, group_key, metric, value, ci_low, ci_high, n",
        "disparities": "partition_key, feature_set, metric, method, relative_to, value",
        "register_entries": "entry_id, value, status, reason",
    }.items():
        assert rows_of(database, table, columns) == rows_of(sequential.database, table, columns), (
            table
        )
