"""``register`` and ``export``: the register, open actions, release decisions and causal estimates
as the results database holds them.
"""

from __future__ import annotations

from pathlib import Path

import click

from impact_assets.cli._main import find_assessment, main
from impact_assets.settings import ProjectPaths


def print_actions(paths: ProjectPaths, assessment_id: str) -> None:
    from impact_assets.cli._oversight import actions_frame
    from impact_assets.storage import connect

    with connect(paths.database, read_only=True) as conn:
        actions = actions_frame(conn, assessment_id).drop(columns=["resolved_by"])
        level = conn.execute(
            "SELECT impact_level, impact_score, raw_impact_score, mitigation_score FROM impact.register_snapshots "
            "WHERE assessment_id = ? AND impact_level IS NOT NULL ORDER BY taken_at DESC LIMIT 1",
            [assessment_id],
        ).fetchall()
    if level:
        click.echo(
            f"\nImpact level (latest snapshot): {level[0][0]} (score {level[0][1]:.2f}; raw {level[0][2]}, mitigation {level[0][3]})"
        )
    click.echo(f"\nGovernance actions of {assessment_id} not yet resolved: {len(actions)}")
    if not actions.empty:
        click.echo(actions.to_string(index=False))


def print_decision(paths: ProjectPaths, assessment_id: str) -> str:
    from impact_assets.oversight import release_state
    from impact_assets.storage import connect

    with connect(paths.database, read_only=True) as conn:
        row = conn.execute(
            "SELECT model_version, decision, rollback_to, reasons FROM impact.release_decisions WHERE assessment_id = ? ORDER BY decided_at DESC LIMIT 1",
            [assessment_id],
        ).fetchall()
        if not row:
            return "none"
        version, decision, rollback_to, reasons = row[0]
        (state,) = release_state(conn, assessment_id, version)
    target = f" to version {rollback_to}" if rollback_to else ""
    waiting = (
        f", awaiting {state.sign_offs_required - state.signatures} sign-offs"
        if state.state == "awaiting_sign_off"
        else ""
    )
    click.echo(
        f"[{assessment_id}] release recommendation for model version {version}: {decision.upper()}{target}{waiting} ({'; '.join(reasons)})"
    )
    return decision


def print_register(
    paths: ProjectPaths,
    assessment_id: str,
    partitions: list[str] | None = None,
    model_version: str | None = None,
) -> None:
    """The register, each partition headed by ``model_version``'s snapshot (default: the serving
    version's), then the newest partition's entries by severity with their owner and action."""
    import pandas as pd

    from impact_assets._markdown import with_interval
    from impact_assets.oversight import release_state, serving_version
    from impact_assets.register import by_severity, current_register
    from impact_assets.storage import connect

    assessment = find_assessment(paths, assessment_id)
    with connect(paths.database, read_only=True) as conn:
        serving = serving_version(assessment.registry, release_state(conn, assessment_id))
        shown = model_version or serving
        frame = current_register(conn, assessment_id, shown)
    if partitions:
        frame = frame[frame["partition_key"].isin(partitions)]
    if frame.empty:
        click.echo(f"{assessment_id}: no register snapshot yet")
        return
    frame = frame.assign(
        value=[
            with_interval(v, lo, hi)
            for v, lo, hi in zip(frame["value"], frame["ci_low"], frame["ci_high"], strict=True)
        ]
    )
    if shown is None:
        heading = "no model version serves yet; each partition's latest snapshot"
    else:
        role = " (serving)" if shown == serving else ""
        heading = f"model version {shown}{role} where it was assessed, else each partition's latest snapshot"
    click.echo(f"\nImpact register of {assessment_id}: {heading}")
    wide = frame.pivot_table(
        index="entry_id", columns="partition_key", values="status", aggfunc="first"
    )
    versions = frame.drop_duplicates("partition_key").set_index("partition_key")["model_version"]
    wide = pd.concat(
        [versions.to_frame().T.rename(index={"model_version": "(model version)"}), wide]
    )
    click.echo(wide.rename_axis(index="entry", columns=None).to_string())
    newest = frame["partition_key"].max()
    day = by_severity(frame[frame["partition_key"] == newest])
    click.echo(f"\nEntries on {newest} (model version {day['model_version'].iloc[0]}):")
    click.echo(
        day[["entry_id", "status", "value", "n", "owner", "action", "reason"]].to_string(
            index=False
        )
    )


@main.command("register")
@click.option("--assessment", "assessment_id", required=True)
@click.option(
    "--model-version",
    default=None,
    help="Head each partition with this version's snapshot (default: the serving version).",
)
@click.pass_obj
def register_show(paths: ProjectPaths, assessment_id: str, model_version: str | None) -> None:
    """Print the register (the serving version's snapshot of every partition), the impact level and the open actions."""
    print_register(paths, assessment_id, model_version=model_version)
    print_actions(paths, assessment_id)


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
    """Write the monitoring record of a model version (JSON, CSV and one HTML page).

    Register history, breaches, human decisions, sign-offs, releases and notices.
    """
    from impact_assets.register import export_audit
    from impact_assets.storage import connect

    target = Path(out_dir) if out_dir else paths.state_dir / "exports"
    with connect(paths.database, read_only=True) as conn:
        written = export_audit(conn, assessment_id, target, model_version=model_version)
    for path in written:
        click.echo(str(path))
