"""The ``impact-assets`` command line: demo, assess, validate, init, simulate, train, register, export."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import pandas as pd

from impact_assets.assessment import (
    DUPLICATE_ASSESSMENT,
    NO_ASSESSMENTS,
    Assessment,
    discover_assessments,
    load_assessment,
    spec_files,
)
from impact_assets.datasets import Rollout, simulate_batch, write_batch
from impact_assets.errors import ImpactAssetsError, SpecError
from impact_assets.register import current_register
from impact_assets.settings import ProjectPaths
from impact_assets.storage import connect

if TYPE_CHECKING:
    import dagster as dg

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# a held or rolled-back release fails its run by design (the blocking check); its decision is printed instead
SILENT_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
PARTITION_BEFORE_START = (
    "{day} is before the first partition of {assessment} ({start}, partitions.start_date)"
)
# DuckDB takes one writing process at a time: the local instance runs one assessment run at a time.
DAGSTER_YAML = "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n"


def _paths(project_dir: str | None) -> ProjectPaths:
    return ProjectPaths.from_env(default_project_dir=project_dir or Path.cwd())


def _last_days(days: int, today: dt.date | None = None) -> list[dt.date]:
    """The ``days`` complete days before ``today`` (UTC), oldest first."""
    today = today or dt.datetime.now(dt.UTC).date()
    return [today - dt.timedelta(days=i) for i in range(days, 0, -1)]


def simulated_rollout(assessment: Assessment) -> Rollout | None:
    """The demo's planted rollout, dated ``days_ago`` days before today."""
    sim = assessment.spec.simulation
    if sim is None or sim.rollout is None:
        return None
    r = sim.rollout
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=r.days_ago)
    return Rollout(r.column, r.value, start, r.flip_to_good)


def simulate_days(
    assessment: Assessment, days: list[dt.date], *, overwrite: bool = False
) -> list[Path]:
    """Write the simulator's batch for each day that has none yet; returns the files written."""
    sim = assessment.spec.simulation
    if sim is None:
        return []
    folder = Path(str(assessment.source_path(sim.source)).split("*")[0])
    written = []
    rollout = simulated_rollout(assessment)
    for day in days:
        target = folder / f"{day.isoformat()}.parquet"
        if target.exists() and not overwrite:
            continue
        batch = simulate_batch(
            day,
            rows=sim.rows_per_day,
            seed=sim.seed,
            drift_from=sim.drift_from,
            rollout=rollout,
            dataset=sim.dataset,
        )
        written.append(write_batch(batch, target))
    return written


UNFAIR_NOTE = "deliberately unfair demo retrain: uses sex as a feature and learned from outcomes degraded for women"


def train_version(
    assessment: Assessment, *, seed_offset: int = 0, rows: int = 5000, unfair: bool = False
) -> str:
    """Train and register a model version on a simulated training snapshot.

    With ``unfair``, the version is made to fail the demo's fairness guardrail: it sees ``sex`` and is
    trained on a snapshot where 70 % of the women who repaid are recorded as defaults.
    """
    from impact_assets.pipeline import train_model

    sim = assessment.spec.simulation
    if sim is None:
        raise click.ClickException(
            f"assessment {assessment.id!r} has no simulation section to draw training data from"
        )
    training_day = assessment.spec.partitions.start_date - dt.timedelta(days=1)
    rows_frame = simulate_batch(
        training_day, rows=rows, seed=sim.seed + 1 + seed_offset, dataset=sim.dataset
    )
    if not unfair:
        return train_model(assessment, rows_frame).version
    if sim.dataset != "german_credit":
        raise click.ClickException(
            "the deliberately unfair retrain is built for german_credit only"
        )
    women = rows_frame["personal_status_and_sex"].str.startswith("female") & (
        rows_frame["creditability"] == "good"
    )
    degrade = women & (np.random.default_rng(sim.seed).random(len(rows_frame)) < 0.7)
    rows_frame.loc[degrade, "creditability"] = "bad"
    return train_model(assessment, rows_frame, extra_features=("sex",), note=UNFAIR_NOTE).version


def _print_causal(paths: ProjectPaths, assessment: Assessment) -> None:
    """The newest causal estimates, beside the effect the demo's simulator planted."""
    if not assessment.spec.analytics.causal:
        return
    with connect(paths.database, read_only=True) as conn:
        rows = conn.execute(
            "SELECT name, partition_key, estimate, ci_low, ci_high, pre_trend_p, reason FROM impact.causal_estimates "
            "WHERE assessment_id = ? QUALIFY row_number() OVER (PARTITION BY name ORDER BY partition_key DESC, computed_at DESC) = 1",
            [assessment.id],
        ).fetchall()
    rollout = simulated_rollout(assessment)
    for name, day, estimate, low, high, trend, reason in rows:
        if estimate is None:
            click.echo(f"\nCausal estimate {name} ({day}): none — {reason}")
            continue
        click.echo(
            f"\nCausal estimate {name} ({day}): {estimate:+.4f} [{low:+.4f}, {high:+.4f}], pre-trend p = {trend:.3g}"
            + (f" — {reason}" if reason else "")
        )
        if rollout is not None:
            click.echo(
                f"  planted by the simulator: {rollout.planted_effect(assessment.spec.simulation.dataset):+.4f}"
            )


def _print_actions(paths: ProjectPaths, assessment_id: str) -> None:
    with connect(paths.database, read_only=True) as conn:
        actions = conn.execute(
            "SELECT entry_id, action_type, owner, strftime(opened_at, '%Y-%m-%d') AS opened, strftime(due_at, '%Y-%m-%d') AS due, "
            "breach_count AS breaches, overdue FROM impact.governance_actions_current WHERE assessment_id = ? AND status = 'open' ORDER BY due_at",
            [assessment_id],
        ).df()
        level = conn.execute(
            "SELECT impact_level, impact_score, raw_impact_score, mitigation_score FROM impact.register_snapshots "
            "WHERE assessment_id = ? AND impact_level IS NOT NULL ORDER BY taken_at DESC LIMIT 1",
            [assessment_id],
        ).fetchall()
    if level:
        click.echo(
            f"\nImpact level (latest snapshot): {level[0][0]} (score {level[0][1]:.2f}; raw {level[0][2]}, mitigation {level[0][3]})"
        )
    click.echo(f"\nOpen governance actions of {assessment_id}: {len(actions)}")
    if not actions.empty:
        click.echo(actions.to_string(index=False))


def _print_decision(paths: ProjectPaths, assessment_id: str) -> str:
    with connect(paths.database, read_only=True) as conn:
        row = conn.execute(
            "SELECT model_version, decision, rollback_to, reasons FROM impact.release_decisions WHERE assessment_id = ? ORDER BY decided_at DESC LIMIT 1",
            [assessment_id],
        ).fetchall()
    if not row:
        return "none"
    version, decision, rollback_to, reasons = row[0]
    target = f" to version {rollback_to}" if rollback_to else ""
    click.echo(
        f"[{assessment_id}] release decision for model version {version}: {decision.upper()}{target} ({'; '.join(reasons)})"
    )
    return decision


def _print_register(
    paths: ProjectPaths, assessment_id: str, partitions: list[str] | None = None
) -> None:
    with connect(paths.database, read_only=True) as conn:
        frame = current_register(conn, assessment_id)
    if partitions:
        frame = frame[frame["partition_key"].isin(partitions)]
    if frame.empty:
        click.echo(f"{assessment_id}: no register snapshot yet")
        return
    frame = frame.assign(
        value=[
            "—" if pd.isna(v) else (f"{v:.3f}" if pd.isna(lo) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]")
            for v, lo, hi in zip(frame["value"], frame["ci_low"], frame["ci_high"], strict=True)
        ]
    )
    click.echo(f"\nImpact register of {assessment_id} (latest snapshot per partition):")
    wide = frame.pivot_table(
        index="entry_id", columns="partition_key", values="status", aggfunc="first"
    )
    click.echo(wide.to_string())
    newest = frame["partition_key"].max()
    click.echo(f"\nEntries on {newest}:")
    click.echo(
        frame[frame["partition_key"] == newest][
            ["entry_id", "value", "n", "status", "reason"]
        ].to_string(index=False)
    )


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


@main.command()
@click.option("--days", default=7, show_default=True, help="How many past days to assess.")
@click.pass_obj
def demo(paths: ProjectPaths, days: int) -> None:
    """Simulate batches, train if needed, materialize every assessment for the last DAYS days."""
    import dagster as dg

    from impact_assets import build_definitions
    from impact_assets.orchestration import assessment_job_name, release_job_name

    _use_local_instance(paths)
    try:
        assessments = discover_assessments(paths)
        day_list = _last_days(days)
        for assessment in assessments:
            written = simulate_days(assessment, day_list)
            click.echo(
                f"[{assessment.id}] {len(written)} new daily batches simulated ({day_list[0]} .. {day_list[-1]})"
            )
            registry = assessment.registry
            if registry is not None and not registry.versions():
                version = train_version(assessment)
                click.echo(
                    f"[{assessment.id}] trained model version {version} into {registry.path}"
                )
        defs = build_definitions(paths)
        failed = 0
        with dg.DagsterInstance.get() as instance:
            for assessment in assessments:
                job = defs.resolve_job_def(assessment_job_name(assessment.id))
                release = defs.resolve_job_def(release_job_name(assessment.id))
                for i, day in enumerate(day_list, 1):
                    result = job.execute_in_process(
                        partition_key=day.isoformat(),
                        instance=instance,
                        raise_on_error=False,
                        run_config=QUIET_LOGS,
                    )
                    state = "ok" if result.success else "FAILED"
                    failed += not result.success
                    click.echo(
                        f"[{assessment.id}] partition {day} ({i}/{len(day_list)}): {state} (run {result.run_id})"
                    )
                    for message in _step_failures(result):
                        click.echo(f"    {message}", err=True)
                last = day_list[-1].isoformat()
                # a hold or rollback fails the release run on purpose (its check blocks promotion)
                release.execute_in_process(
                    partition_key=last,
                    instance=instance,
                    raise_on_error=False,
                    run_config=SILENT_LOGS,
                )
                decision = _print_decision(paths, assessment.id)
                registry = assessment.registry
                rolled_back = registry is not None and any(
                    registry.status(v).get("status") == "rolled_back" for v in registry.versions()
                )
                if (
                    registry is not None
                    and decision == "approve"
                    and not rolled_back
                    and assessment.spec.simulation is not None
                    and assessment.spec.simulation.unfair_retrain
                ):
                    version = train_version(assessment, unfair=True)
                    click.echo(
                        f"[{assessment.id}] retrained model version {version} ({UNFAIR_NOTE}); re-assessing {last}"
                    )
                    result = job.execute_in_process(
                        partition_key=last,
                        instance=instance,
                        raise_on_error=False,
                        run_config=QUIET_LOGS,
                    )
                    failed += not result.success
                    release.execute_in_process(
                        partition_key=last,
                        instance=instance,
                        raise_on_error=False,
                        run_config=SILENT_LOGS,
                    )
                    if _print_decision(paths, assessment.id) == "rollback":
                        click.echo(
                            f"[{assessment.id}] version {version} is marked rolled_back in {registry.path}; scoring uses version {registry.latest(usable=True).version} again"
                        )
            _deliver_lineage(paths, assessments, defs, instance)
        for assessment in assessments:
            _print_register(paths, assessment.id, [d.isoformat() for d in day_list])
            _print_actions(paths, assessment.id)
            _print_causal(paths, assessment)
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"\nResults: {paths.database}  (schema impact)")
    click.echo("Open the Dagster UI on this instance with:  make ui   (then http://127.0.0.1:3000)")
    if failed:
        sys.exit(1)


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
    from impact_assets.orchestration import assessment_job_name, release_job_name

    if end < start:
        raise click.BadParameter(f"--to {end:%Y-%m-%d} is before --from {start:%Y-%m-%d}")
    _use_local_instance(paths)
    try:
        defs = build_definitions(paths)
        job = defs.resolve_job_def(assessment_job_name(assessment_id))
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # an unknown job name: say which assessments exist
        raise click.ClickException(f"no assessment {assessment_id!r}: {exc}") from exc
    days = [(start + dt.timedelta(days=i)).date() for i in range((end - start).days + 1)]
    first = next(a for a in discover_assessments(paths) if a.id == assessment_id).spec.partitions
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
                run_config=QUIET_LOGS,
            )
            failed += not result.success
            click.echo(
                f"[{assessment_id}] partition {day} ({i}/{len(days)}): {'ok' if result.success else 'FAILED'} (run {result.run_id})"
            )
            for message in _step_failures(result):
                click.echo(f"    {message}", err=True)
        if release:
            defs.resolve_job_def(release_job_name(assessment_id)).execute_in_process(
                partition_key=days[-1].isoformat(),
                instance=instance,
                raise_on_error=False,
                run_config=SILENT_LOGS,
            )
            _print_decision(paths, assessment_id)
        _deliver_lineage(paths, discover_assessments(paths), defs, instance)
    if failed:
        sys.exit(1)


def _step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """What each failed step of a run said: the asset and the error, which names the file or table."""
    return [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]


def _deliver_lineage(
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
    from impact_assets.lineage import LineageCatalog, pending_lineage

    _use_local_instance(paths)
    try:
        assessments = discover_assessments(paths)
        defs = build_definitions(paths)
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    with dg.DagsterInstance.get() as instance:
        if deliver:
            _deliver_lineage(paths, assessments, defs, instance)
        status = pending_lineage(
            instance, LineageCatalog(assessments, defs.resolve_asset_graph()), paths.state_dir
        )
    click.echo(f"pending: {status.pending_events} events in {status.pending_runs} runs")
    for reason in status.rejected:
        click.echo(f"rejected: {reason}")
    if status.pending_events:
        sys.exit(1)


def _use_local_instance(paths: ProjectPaths) -> None:
    """Use ``$DAGSTER_HOME`` if set, else the project's local instance under the state folder."""
    if os.environ.get("DAGSTER_HOME"):
        return
    paths.dagster_home.mkdir(parents=True, exist_ok=True)
    if not (paths.dagster_home / "dagster.yaml").exists():
        (paths.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home)


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.pass_obj
def ui(paths: ProjectPaths, port: int, host: str) -> None:
    """Start the Dagster UI and daemon (``dagster dev``) on the project's local instance."""
    _use_local_instance(paths)
    dagster = Path(sys.executable).with_name("dagster")
    workspace = paths.project_dir / "workspace.yaml"
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(workspace), "-h", host, "-p", str(port)])


@main.command()
@click.option("--days", default=7, show_default=True)
@click.option("--overwrite", is_flag=True, help="Regenerate batches that already exist.")
@click.pass_obj
def simulate(paths: ProjectPaths, days: int, overwrite: bool) -> None:
    """Write the simulator's daily batches for the last DAYS days."""
    for assessment in discover_assessments(paths):
        written = simulate_days(assessment, _last_days(days), overwrite=overwrite)
        click.echo(f"[{assessment.id}] {len(written)} batches written")


@main.command()
@click.option("--assessment", "assessment_id", required=True)
@click.option(
    "--seed-offset",
    default=None,
    type=int,
    help="Training snapshot to draw (default: a fresh one per version).",
)
@click.pass_obj
def train(paths: ProjectPaths, assessment_id: str, seed_offset: int | None) -> None:
    """Train a new model version on freshly simulated data and register it (the model sensor picks it up)."""
    try:
        found = {a.id: a for a in discover_assessments(paths)}
        if assessment_id not in found:
            raise click.ClickException(
                f"no assessment {assessment_id!r} (assessments: {sorted(found)})"
            )
        assessment = found[assessment_id]
        offset = (
            seed_offset
            if seed_offset is not None
            else len(assessment.registry.versions())
            if assessment.registry
            else 0
        )
        click.echo(f"registered model version {train_version(assessment, seed_offset=offset)}")
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("register")
@click.option("--assessment", "assessment_id", required=True)
@click.pass_obj
def register_show(paths: ProjectPaths, assessment_id: str) -> None:
    """Print the latest register snapshot of every partition, the impact level and the open actions."""
    _print_register(paths, assessment_id)
    _print_actions(paths, assessment_id)


@main.command()
@click.option("--assessment", "assessment_id", required=True)
@click.option("--model-version", default=None, help="Only this model version (default: all).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to write to (default: <state>/exports).",
)
@click.pass_obj
def export(
    paths: ProjectPaths, assessment_id: str, model_version: str | None, out_dir: str | None
) -> None:
    """Write the audit trail of a model version: register history, changes, actions, decisions, evidence (JSON and CSV)."""
    from impact_assets.register import export_audit

    target = Path(out_dir) if out_dir else paths.state_dir / "exports"
    with connect(paths.database, read_only=True) as conn:
        written = export_audit(conn, assessment_id, target, model_version=model_version)
    for path in written:
        click.echo(str(path))


def _problem(exc: ImpactAssetsError) -> dict:
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "context": {k: str(v) for k, v in exc.context.items()},
    }


def _checked(files: list[Path], paths: ProjectPaths) -> list[dict]:
    """Load each spec with its SQL; one result per file, errors kept, nothing run or written."""
    results: list[dict] = []
    seen: dict[str, Path] = {}
    for file in files:
        try:
            assessment = load_assessment(file, paths)
            if assessment.id in seen:
                raise SpecError(
                    DUPLICATE_ASSESSMENT.format(
                        id=assessment.id, first=seen[assessment.id], second=file
                    ),
                    context={"file": file},
                )
        except ImpactAssetsError as exc:
            results.append({"path": str(file), "valid": False, "error": _problem(exc)})
            continue
        seen[assessment.id] = file
        results.append(
            {
                "path": str(file),
                "valid": True,
                "id": assessment.id,
                "sql_models": list(assessment.sql.order),
                "register_entries": len(assessment.spec.register_entries),
            }
        )
    return results


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), required=False)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object with every file's result, for CI and editors.",
)
@click.pass_obj
def validate(paths: ProjectPaths, path: Path | None, output: str) -> None:
    """Check assessment specs and their SQL without running anything (exit code 1 on any error).

    PATH is a spec file or a folder of them (default: the assessments folder). SQL models are read
    from the project's SQL folder.
    """
    target = path or paths.assessments_dir
    files = spec_files(target) if target.is_dir() else [target]
    results = (
        _checked(files, paths)
        if files
        else [
            {
                "path": str(target),
                "valid": False,
                "error": _problem(SpecError(NO_ASSESSMENTS.format(path=target))),
            }
        ]
    )
    valid = all(r["valid"] for r in results)
    if output == "json":
        click.echo(json.dumps({"valid": valid, "results": results}, indent=2))
    else:
        for r in results:
            if r["valid"]:
                click.echo(
                    f"ok     {r['path']}: {r['id']}, {r['register_entries']} register entries, "
                    f"SQL models {' -> '.join(r['sql_models'])}"
                )
            else:
                where = ", ".join(f"{k}={v}" for k, v in r["error"]["context"].items())
                click.echo(
                    f"error  {r['path']}: {r['error']['type']}: {r['error']['message']}"
                    + (f" [{where}]" if where else ""),
                    err=True,
                )
    if not valid:
        sys.exit(1)


@main.command()
@click.argument("name")
@click.pass_obj
def init(paths: ProjectPaths, name: str) -> None:
    """Scaffold a new assessment: NAME.yaml in the assessments folder and its SQL, with comments."""
    from impact_assets._scaffold import first_of_year, scaffold

    try:
        written = scaffold(paths, name, start=first_of_year())
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: put the scored rows in data/{name}/*.csv, then: impact-assets validate")


@main.command()
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--markdown", is_flag=True, help="The reference of every key as Markdown tables instead."
)
def schema(out_file: Path | None, markdown: bool) -> None:
    """Print the JSON Schema of an assessment spec (for editor completion and validation)."""
    from impact_assets.spec import json_schema, markdown_reference

    text = markdown_reference() if markdown else json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        click.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
