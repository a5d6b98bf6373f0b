"""``assess`` and ``lineage``: run assessments on the local instance and deliver their OpenLineage
events."""

from __future__ import annotations

import datetime as dt
import sys

import click

from impact_assets.cli._main import (
    SILENT_LOGS,
    deliver_lineage,
    deliver_notices_of,
    find_assessment,
    main,
    step_failures,
    use_local_instance,
)
from impact_assets.cli._results import print_decision
from impact_assets.errors import ImpactAssetsError
from impact_assets.settings import ProjectPaths

PARTITION_BEFORE_START = (
    "{day} is before the first partition of {assessment} ({start}, partitions.start_date)"
)


@main.command()
@click.option("--assessment", "assessment_id", required=True)
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day (YYYY-MM-DD).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day, included.",
)
@click.option(
    "--release/--no-release", default=False, help="Also decide on the release after the last day."
)
@click.pass_obj
def assess(
    paths: ProjectPaths, assessment_id: str, start: dt.datetime, end: dt.datetime, release: bool
) -> None:
    """Assess a range of days (a backfill) in this process, one run per day, on the local Dagster instance."""
    import dagster as dg

    from impact_assets import build_definitions
    from impact_assets.assessment import discover_assessments
    from impact_assets.orchestration import assessment_job_name, release_job_name

    if end < start:
        raise click.BadParameter(f"--to {end:%Y-%m-%d} is before --from {start:%Y-%m-%d}")
    use_local_instance(paths)
    try:
        assessment = find_assessment(paths, assessment_id)
        defs = build_definitions(paths)
        job = defs.resolve_job_def(assessment_job_name(assessment_id))
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    days = [(start + dt.timedelta(days=i)).date() for i in range((end - start).days + 1)]
    first = assessment.spec.partitions
    if days[0] < first.start_date:
        raise click.BadParameter(
            PARTITION_BEFORE_START.format(
                day=days[0], assessment=assessment_id, start=first.start_date
            ),
            param_hint="--from",
        )
    failed = 0
    with dg.DagsterInstance.get() as instance:
        for i, day in enumerate(days, 1):
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                instance=instance,
                raise_on_error=False,
                run_config=SILENT_LOGS,
            )
            failed += not result.success
            click.echo(
                f"[{assessment_id}] partition {day} ({i}/{len(days)}): {'ok' if result.success else 'FAILED'} (run {result.run_id})"
            )
            for message in step_failures(result):
                click.echo(f"    {message}", err=True)
        if release:
            defs.resolve_job_def(release_job_name(assessment_id)).execute_in_process(
                partition_key=days[-1].isoformat(),
                instance=instance,
                raise_on_error=False,
                run_config=SILENT_LOGS,
            )
            print_decision(paths, assessment_id)
        deliver_lineage(paths, discover_assessments(paths), defs, instance)
    deliver_notices_of(paths, assessment)
    if failed:
        sys.exit(1)


@main.command()
@click.option(
    "--deliver/--status",
    default=True,
    show_default=True,
    help="Send pending events, or only count them.",
)
@click.pass_obj
def lineage(paths: ProjectPaths, deliver: bool) -> None:
    """Deliver the OpenLineage events of finished runs (or, with --status, count what is pending)."""
    import dagster as dg

    from impact_assets import build_definitions
    from impact_assets.assessment import discover_assessments
    from impact_assets.lineage import LineageCatalog, pending_lineage

    use_local_instance(paths)
    try:
        assessments = discover_assessments(paths)
        defs = build_definitions(paths)
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    with dg.DagsterInstance.get() as instance:
        if deliver:
            deliver_lineage(paths, assessments, defs, instance)
        status = pending_lineage(
            instance, LineageCatalog(assessments, defs.resolve_asset_graph()), paths.state_dir
        )
    click.echo(f"pending: {status.pending_events} events in {status.pending_runs} runs")
    for reason in status.rejected:
        click.echo(f"rejected: {reason}")
    if status.pending_events:
        sys.exit(1)
