"""``ui``: the Dagster webserver and daemon on the project's local instance, stopped together.

``dagster dev`` is superseded by ``dg dev``, which needs a ``dg`` project; both ignore SIGTERM for
tens of seconds while they wind down their children. The command starts Dagster's two services
itself, each in a process group of its own, and on Ctrl-C or SIGTERM stops the groups: SIGTERM,
then SIGKILL for what is still running after ``STOP_GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from impact_assets.cli._main import main, use_local_instance
from impact_assets.settings import ProjectPaths

#: How long the services get to stop after SIGTERM before they are killed.
STOP_GRACE_SECONDS = 4.0
NO_WORKSPACE = "no workspace.yaml in {folder}: run the command in a project (see `impact-assets init`) or pass --project-dir"


def _stop(processes: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each service's process group, then SIGKILL after ``grace`` seconds."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in processes):
        time.sleep(0.1)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers: run workers, code servers
        process.wait()


def run_services(commands: list[list[str]], *, grace: float = STOP_GRACE_SECONDS) -> int:
    """Run ``commands``, each in a process group of its own, until one ends or this process is told
    to stop (SIGINT, SIGTERM); then stop them all.

    Returns:
        0 after SIGINT or SIGTERM, else the exit code of the service that ended first.
    """
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    processes: list[subprocess.Popen] = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, start_new_session=True))
        while not stopping and all(p.poll() is None for p in processes):
            time.sleep(0.2)
        return 0 if stopping else next(p.returncode for p in processes if p.poll() is not None)
    finally:
        _stop(processes, grace)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.pass_obj
def ui(paths: ProjectPaths, port: int, host: str) -> None:
    """Start the Dagster UI and daemon on the project's local instance (Ctrl-C stops both)."""
    workspace = paths.project_dir / "workspace.yaml"
    if not workspace.exists():
        raise click.UsageError(NO_WORKSPACE.format(folder=paths.project_dir))
    use_local_instance(paths)
    # Create the instance's storage here, once: the webserver and the daemon would otherwise both
    # create a fresh instance's SQLite databases at the same moment, and the loser's schema check
    # fails (alembic's CommandError) while the other is half-way through.
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
    bin_dir = Path(sys.executable).parent
    click.echo(
        f"Dagster UI on http://{host}:{port} (instance {os.environ['DAGSTER_HOME']}); Ctrl-C stops it"
    )
    code = run_services(
        [
            [str(bin_dir / "dagster-webserver"), "-w", str(workspace), "-h", host, "-p", str(port)],
            [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)],
        ]
    )
    sys.exit(0 if code == 0 else 1)  # a service that stopped by itself
