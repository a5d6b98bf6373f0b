"""Runs one assessment partition in this process, for tests that need a separate process to kill
or to run beside another: ``python -m tests._run_partition PROJECT_DIR ASSESSMENT PARTITION [STALL_MARKER]``.

With ``STALL_MARKER``, the register snapshot's transaction stops after its snapshot row, entries and
governance actions are written, touches the marker and waits to be killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg

from impact_assets import ProjectPaths, assessment_job_name, build_definitions
from impact_assets.register import _snapshot


def _stall_after_governance(marker: Path):
    original = _snapshot.apply_governance

    def stalled(*args, **kwargs):
        original(*args, **kwargs)
        marker.touch()
        time.sleep(600)

    return stalled


def main(project_dir: str, assessment_id: str, partition: str, marker: str | None = None) -> int:
    if marker:
        _snapshot.apply_governance = _stall_after_governance(Path(marker))
    paths = ProjectPaths.for_project(project_dir)
    job = build_definitions(paths).resolve_job_def(assessment_job_name(assessment_id))
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            partition_key=partition, instance=instance, raise_on_error=False
        )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
