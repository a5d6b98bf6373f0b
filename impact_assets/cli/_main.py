"""The ``impact-assets`` command group, the local Dagster instance its commands run on, and what
they share when they run jobs in process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from impact_assets.settings import ProjectPaths

if TYPE_CHECKING:
    import dagster as dg

    from impact_assets.assessment import Assessment


#: Runs started by the command line log to the run's event log only (the UI shows it, tracebacks
#: included); the command prints what each run did, a failed step's message in a few lines, and a
#: release decision (a hold or rollback fails its run by design: the blocking check).
SILENT_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# DuckDB takes one writing process at a time: the local instance runs one assessment run at a time.
DAGSTER_YAML = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n"


def _paths(project_dir: str | None) -> ProjectPaths:
    return ProjectPaths.from_env(default_project_dir=project_dir or Path.cwd())


@click.group()
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Project root (default: $IMPACT_ASSETS_PROJECT_DIR or the current directory).",
)
@click.pass_context
def main(ctx: click.Context, project_dir: str | None) -> None:
    """Model impact assessments as Dagster assets."""
    ctx.obj = _paths(project_dir)


def find_assessment(paths: ProjectPaths, assessment_id: str) -> Assessment:
    """The project's assessment ``assessment_id``; a usage error (exit code 2) naming the others."""
    from impact_assets.assessment import discover_assessments

    found = {a.id: a for a in discover_assessments(paths)}
    if assessment_id not in found:
        raise click.BadParameter(
            f"no assessment {assessment_id!r} (assessments: {', '.join(sorted(found))})",
            param_hint="--assessment",
        )
    return found[assessment_id]


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """What each failed step of a run said, without the traceback (the run's log keeps it).

    A package error's message (as a ``dg.Failure``) names the file, table or model; any other
    exception is reported by its innermost cause's type and message.
    """
    messages = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            text = data.user_failure_data.description
        elif data.error is not None:
            error = data.error
            while error.cause is not None:
                error = error.cause
            text = f"{error.cls_name}: {error.message.strip()}"
        else:
            text = "failed"
        messages.append(f"{event.step_key}: {text.strip()}")
    return messages


def deliver_lineage(
    paths: ProjectPaths,
    assessments: list[Assessment],
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
) -> None:
    """Send the lineage of the runs just made (the lineage sensor does it under ``dagster dev``)."""
    from impact_assets.lineage import LineageCatalog, deliver_pending

    report = deliver_pending(
        instance, LineageCatalog(assessments, defs.resolve_asset_graph()), paths.state_dir
    )
    click.echo(f"OpenLineage: {report.summary()}")


def deliver_notices_of(paths: ProjectPaths, assessment: Assessment) -> None:
    """Deliver the assessment's pending notices (the notifications sensor does it under Dagster)."""
    from impact_assets.oversight import deliver_notices, notices_file

    report = deliver_notices(assessment.spec, paths)
    where = notices_file(assessment.spec, paths)
    if where is not None and where.is_relative_to(paths.project_dir):
        where = where.relative_to(paths.project_dir)
    click.echo(f"[{assessment.id}] {report.summary()}" + (f" (file: {where})" if where else ""))


def use_local_instance(paths: ProjectPaths) -> None:
    """Use ``$DAGSTER_HOME`` if set, else the project's local instance under the state folder."""
    if os.environ.get("DAGSTER_HOME"):
        return
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    if not (paths.dagster_home / "dagster.yaml").exists():
        (paths.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)
