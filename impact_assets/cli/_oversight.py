"""``actions``, ``release`` and ``notify``: people's decisions on governance actions and releases,
and the delivery of notices.

Every decision names who takes it (``--by``); the OS user running the command is recorded beside it.
"""

from __future__ import annotations

import click

from impact_assets.cli._main import deliver_notices_of, find_assessment, main
from impact_assets.errors import ImpactAssetsError
from impact_assets.settings import ProjectPaths

_assessment = click.option("--assessment", "assessment_id", required=True)
_by = click.option(
    "--by", required=True, help="Who decides (their name, as the register shows it)."
)


def _decide(
    paths: ProjectPaths, assessment_id: str, action_id: str, decision: str, **fields
) -> None:
    from impact_assets.oversight import decide_action
    from impact_assets.storage import connect, migrate

    assessment = find_assessment(paths, assessment_id)
    try:
        with connect(paths.database) as conn:
            migrate(conn)
            state = decide_action(
                conn,
                assessment.id,
                action_id,
                decision,  # type: ignore[arg-type]
                governance=assessment.spec.governance,
                **fields,
            )
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"[{assessment.id}] action {state.action_id[:8]} ({state.entry_id}): {decision} recorded; "
        f"now {state.last_state}, owner {state.owner}"
    )


@main.group()
def actions() -> None:
    """List governance actions and record decisions on them."""


def actions_frame(conn, assessment_id: str, *, show_all: bool = False):
    """The assessment's actions for people to read: most urgent first, resolved ones last."""
    return conn.execute(
        """SELECT left(action_id, 8) AS action, entry_id AS entry, status AS state, owner,
                  strftime(due_at, '%Y-%m-%d') AS due, breach_count AS breaches, overdue,
                  coalesce(acknowledged_by, '') AS acknowledged_by,
                  coalesce(waived_by || ' (approved by ' || waiver_approver || ', until ' || strftime(waiver_expires_at - INTERVAL 1 DAY, '%Y-%m-%d') || ')', '') AS waiver,
                  coalesce(escalated_to, '') AS escalated_to, coalesce(resolved_by, '') AS resolved_by
           FROM impact.governance_actions_current WHERE assessment_id = $a AND ($all OR status <> 'resolved')
           ORDER BY status = 'resolved', overdue DESC, due_at""",
        {"a": assessment_id, "all": show_all},
    ).df()


@actions.command("list")
@_assessment
@click.option("--all", "show_all", is_flag=True, help="Resolved actions too.")
@click.pass_obj
def actions_list(paths: ProjectPaths, assessment_id: str, show_all: bool) -> None:
    """The assessment's governance actions: state, owner, due date, who decided what."""
    from impact_assets.storage import connect

    find_assessment(paths, assessment_id)
    with connect(paths.database, read_only=True) as conn:
        frame = actions_frame(conn, assessment_id, show_all=show_all)
    if frame.empty:
        click.echo(f"{assessment_id}: no {'' if show_all else 'live '}governance actions")
        return
    click.echo(frame.to_string(index=False))


@actions.command("ack")
@_assessment
@click.argument("action_id")
@_by
@click.option("--rationale", default=None, help="What you will do about it (optional).")
@click.pass_obj
def actions_ack(paths, assessment_id, action_id, by, rationale) -> None:
    """Acknowledge an open action: you have seen it and own the follow-up."""
    _decide(paths, assessment_id, action_id, "acknowledge", by=by, rationale=rationale)


@actions.command("assign")
@_assessment
@click.argument("action_id")
@_by
@click.option("--to", "assignee", required=True, help="The new owner.")
@click.option("--rationale", default=None)
@click.pass_obj
def actions_assign(paths, assessment_id, action_id, by, assignee, rationale) -> None:
    """Give an action to another owner."""
    _decide(
        paths, assessment_id, action_id, "assign", by=by, assignee=assignee, rationale=rationale
    )


@actions.command("waive")
@_assessment
@click.argument("action_id")
@_by
@click.option("--approver", required=True, help="Who approves the waiver (not you).")
@click.option(
    "--expires", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day the waiver holds."
)
@click.option("--rationale", required=True, help="Why the breach is accepted for now.")
@click.pass_obj
def actions_waive(paths, assessment_id, action_id, by, approver, expires, rationale) -> None:
    """Accept a breach until a date; it re-opens on expiry or when the breach gets worse."""
    _decide(
        paths,
        assessment_id,
        action_id,
        "waive",
        by=by,
        approver=approver,
        expires_on=expires.date(),
        rationale=rationale,
    )


@actions.command("resolve")
@_assessment
@click.argument("action_id")
@_by
@click.option("--rationale", required=True, help="What was done, and the evidence.")
@click.pass_obj
def actions_resolve(paths, assessment_id, action_id, by, rationale) -> None:
    """Close an action with what was done."""
    _decide(paths, assessment_id, action_id, "resolve", by=by, rationale=rationale)


@actions.command("comment")
@_assessment
@click.argument("action_id")
@_by
@click.option("--text", "rationale", required=True)
@click.pass_obj
def actions_comment(paths, assessment_id, action_id, by, rationale) -> None:
    """Add a comment to an action's record."""
    _decide(paths, assessment_id, action_id, "comment", by=by, rationale=rationale)


@main.group()
def release() -> None:
    """Release state of each model version, and sign-offs."""


def print_releases(paths: ProjectPaths, assessment_id: str) -> None:
    from impact_assets.oversight import release_state, serving_version
    from impact_assets.storage import connect

    assessment = find_assessment(paths, assessment_id)
    with connect(paths.database, read_only=True) as conn:
        states = release_state(conn, assessment_id)
    serving = serving_version(assessment.registry, states)
    click.echo(f"\nRelease state of {assessment_id} (serving: version {serving or 'none'}):")
    for s in states:
        marker = "*" if s.model_version == serving else " "
        since = f"{s.state_since:%Y-%m-%d %H:%M} UTC" if s.state_since else "-"
        click.echo(
            f" {marker} version {s.model_version}: {s.state} since {since}; recommendation {s.recommendation} "
            f"on {s.partition_key}; sign-offs {s.signatures} of {s.sign_offs_required}"
            + (f" ({', '.join(s.signers)})" if s.signers else "")
        )


@release.command("status")
@_assessment
@click.pass_obj
def release_status(paths: ProjectPaths, assessment_id: str) -> None:
    """Each model version's state: serving, approved, awaiting sign-off, held or rolled back."""
    print_releases(paths, assessment_id)


@release.command("sign-off")
@_assessment
@click.option("--model-version", required=True)
@_by
@click.option("--rationale", required=True, help="What you checked and why you sign.")
@click.pass_obj
def release_sign_off(
    paths: ProjectPaths, assessment_id: str, model_version: str, by: str, rationale: str
) -> None:
    """Sign off a model version the register recommends; the last sign-off required promotes it."""
    from impact_assets.pipeline import sign_off_release
    from impact_assets.storage import connect, migrate

    assessment = find_assessment(paths, assessment_id)
    try:
        with connect(paths.database) as conn:
            migrate(conn)
            state = sign_off_release(
                conn, assessment, model_version, signer=by, rationale=rationale
            )
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"[{assessment.id}] {by} signed off model version {model_version}: {state.state} "
        f"({state.signatures} of {state.sign_offs_required} sign-offs)"
        + (f"; open actions: {', '.join(state.open_actions)}" if state.open_actions else "")
    )


@main.command()
@click.option(
    "--assessment", "assessment_id", default=None, help="Only this assessment (default: all)."
)
@click.pass_obj
def notify(paths: ProjectPaths, assessment_id: str | None) -> None:
    """Deliver pending notices to their channels (the notifications sensor does it under Dagster)."""
    from impact_assets.assessment import discover_assessments

    chosen = (
        [find_assessment(paths, assessment_id)] if assessment_id else discover_assessments(paths)
    )
    for assessment in chosen:
        deliver_notices_of(paths, assessment)
