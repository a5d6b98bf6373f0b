"""``demo``, ``simulate`` and ``train``: the demo's simulated days and model versions, and the whole
demo story (assess, decide, retrain unfairly, roll back).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
from impact_assets.cli._oversight import print_releases
from impact_assets.cli._results import print_actions, print_decision, print_register
from impact_assets.errors import ImpactAssetsError
from impact_assets.settings import ProjectPaths

if TYPE_CHECKING:
    import dagster as dg

    from impact_assets.assessment import Assessment
    from impact_assets.datasets import Rollout


def _last_days(days: int, today: dt.date | None = None) -> list[dt.date]:
    """The ``days`` complete days before ``today`` (UTC), oldest first."""
    today = today or dt.datetime.now(dt.UTC).date()
    return [today - dt.timedelta(days=i) for i in range(days, 0, -1)]


def simulated_rollout(assessment: Assessment) -> Rollout | None:
    """The demo's planted rollout, dated ``days_ago`` days before today."""
    from impact_assets.datasets import Rollout

    sim = assessment.spec.simulation
    if sim is None or sim.rollout is None:
        return None
    r = sim.rollout
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=r.days_ago)
    return Rollout(r.column, r.value, start, r.flip_to_good)


def simulate_days(
    assessment: Assessment,
    days: list[dt.date],
    *,
    overwrite: bool = False,
    today: dt.date | None = None,
) -> list[Path]:
    """Write the simulator's batch for each day that has none yet, and (when outcomes arrive late)
    the outcomes observed by ``today`` on each day that has no outcomes file yet; returns the files
    written."""
    import pandas as pd

    from impact_assets.datasets import DATASETS, delayed_outcomes, simulate_batch, write_batch

    sim = assessment.spec.simulation
    if sim is None:
        return []
    folder = Path(str(assessment.source_path(sim.source)).split("*")[0])
    written = []
    rollout = simulated_rollout(assessment)
    late = sim.outcomes
    observed = []
    for day in days:
        batch = simulate_batch(
            day,
            rows=sim.rows_per_day,
            seed=sim.seed,
            drift_from=sim.drift_from,
            rollout=rollout,
            dataset=sim.dataset,
        )
        if late is not None:
            outcome = assessment.spec.outcomes.label if assessment.spec.outcomes else None
            observed.append(
                delayed_outcomes(
                    batch,
                    day,
                    seed=sim.seed,
                    min_days=late.min_days,
                    max_days=late.max_days,
                    dataset=sim.dataset,
                    outcome=outcome or assessment.spec.bindings.label,
                )
            )
            # unknown when the decision is made
            batch[DATASETS[sim.dataset].outcome] = pd.Series(
                pd.NA, index=batch.index, dtype="string"
            )
        target = folder / f"{day.isoformat()}.parquet"
        if overwrite or not target.exists():
            written.append(write_batch(batch, target))
    if observed:
        today = today or dt.datetime.now(dt.UTC).date()
        arrived = pd.concat(observed, ignore_index=True)
        arrived = arrived[arrived["observed_on"] <= today]
        landing = Path(str(assessment.source_path(late.source)).split("*")[0])
        for on, rows in arrived.groupby("observed_on"):
            target = landing / f"{on.isoformat()}.parquet"
            if overwrite or not target.exists():
                written.append(write_batch(rows, target, date_column="observed_on"))
    return written


def _late(assessment: Assessment) -> bool:
    """Whether the simulator delivers this assessment's outcomes days after the decision."""
    sim = assessment.spec.simulation
    return sim is not None and sim.outcomes is not None and assessment.spec.outcomes is not None


def _outcomes_arrive(
    paths: ProjectPaths,
    assessment: Assessment,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    day_list: list[dt.date],
) -> int:
    """Every outcome known today lands; the cohorts matured since their night are re-assessed, as the
    outcomes sensor would have them. Returns the number of failed runs."""
    from impact_assets import pipeline
    from impact_assets.orchestration import SNAPSHOT_REASON_TAG, outcomes_job_name
    from impact_assets.storage import connect

    simulate_days(assessment, day_list)
    with connect(paths.database) as conn:
        pipeline.prepare(conn, assessment)
        due = pipeline.outcome_reassessments(
            conn, assessment, last_partition=day_list[-1].isoformat()
        )
    job = defs.resolve_job_def(outcomes_job_name(assessment.id))
    failed = 0
    for cohort, partition, _ in due:
        result = job.execute_in_process(
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
            run_config=SILENT_LOGS,
            tags={SNAPSHOT_REASON_TAG: "outcomes arrived", "impact_assets/cohort": cohort},
        )
        failed += not result.success
    click.echo(
        f"[{assessment.id}] outcomes arrived: {len(due)} cohorts matured since their night, re-assessed on their realised outcomes"
        + (f" ({', '.join(c for c, _, _ in due)})" if due else "")
    )
    return failed


UNFAIR_NOTE = "deliberately unfair demo retrain: uses sex as a feature and learned from outcomes degraded for women"


def train_version(
    assessment: Assessment,
    *,
    seed_offset: int = 0,
    rows: int = 5000,
    unfair: bool = False,
    proposed_by: str | None = None,
) -> str:
    """Train and register a model version on a simulated training snapshot.

    With ``unfair``, the version is made to fail the demo's fairness guardrail: it sees ``sex`` and is
    trained on a snapshot where 70 % of the women who repaid are recorded as defaults.
    """
    import numpy as np

    from impact_assets.datasets import simulate_batch
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
        return train_model(assessment, rows_frame, proposed_by=proposed_by).version
    if sim.dataset != "german_credit":
        raise click.ClickException(
            "the deliberately unfair retrain is built for german_credit only"
        )
    women = rows_frame["personal_status_and_sex"].str.startswith("female") & (
        rows_frame["creditability"] == "good"
    )
    degrade = women & (np.random.default_rng(sim.seed).random(len(rows_frame)) < 0.7)
    rows_frame.loc[degrade, "creditability"] = "bad"
    return train_model(
        assessment, rows_frame, extra_features=("sex",), note=UNFAIR_NOTE, proposed_by=proposed_by
    ).version


def _print_causal(paths: ProjectPaths, assessment: Assessment) -> None:
    """The newest causal estimates, beside the effect the demo's simulator planted."""
    from impact_assets.storage import connect

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


def _sign_off(paths: ProjectPaths, assessment: Assessment, day_list: list[dt.date]) -> None:
    """What approvers do after the nights: sign the recommended version off (four eyes)."""
    from impact_assets.oversight import release_state
    from impact_assets.pipeline import sign_off_release
    from impact_assets.storage import connect

    policy = assessment.spec.release.sign_off
    span = f"{day_list[0]} .. {day_list[-1]}"
    with connect(paths.database) as conn:
        (state,) = release_state(conn, assessment.id)[:1] or [None]
        if policy is not None and state is not None and state.state == "awaiting_sign_off":
            signers = [p for p in policy.people() if p != state.proposed_by][: policy.required]
            for signer in signers:
                state = sign_off_release(
                    conn,
                    assessment,
                    state.model_version,
                    signer=signer,
                    rationale=f"reviewed the register of {span}, the open actions and the report",
                    via="demo",
                )
            click.echo(
                f"[{assessment.id}] model version {state.model_version} signed off by {' and '.join(signers)}: {state.state}"
            )


def _acknowledge(paths: ProjectPaths, assessment: Assessment, day_list: list[dt.date]) -> None:
    """What owners do with the review actions the register opened: acknowledge them, saying why."""
    from impact_assets.oversight import decide_action
    from impact_assets.storage import connect

    span = f"{day_list[0]} .. {day_list[-1]}"
    with connect(paths.database) as conn:
        review = conn.execute(
            "SELECT action_id, entry_id, owner FROM impact.governance_actions_current "
            "WHERE assessment_id = ? AND status = 'open' AND action_type = 'review' ORDER BY opened_at",
            [assessment.id],
        ).fetchall()
        for action_id, entry_id, owner in review:
            decide_action(
                conn,
                assessment.id,
                action_id,
                "acknowledge",
                by=owner,
                governance=assessment.spec.governance,
                rationale=f"{entry_id}: seen in the review of {span}; the owner investigates",
            )
    if review:
        click.echo(
            f"[{assessment.id}] {len(review)} open review actions acknowledged by their owners, with a rationale"
        )


@main.command()
@click.option("--days", default=7, show_default=True, help="How many past days to assess.")
@click.pass_obj
def demo(paths: ProjectPaths, days: int) -> None:
    """Simulate batches, train if needed, materialize every assessment for the last DAYS days."""
    import dagster as dg

    from impact_assets import build_definitions
    from impact_assets.assessment import discover_assessments
    from impact_assets.orchestration import AS_OF_TAG, assessment_job_name, release_job_name

    use_local_instance(paths)
    try:
        assessments = discover_assessments(paths)
        day_list = _last_days(days)
        for assessment in assessments:
            # late outcomes land night by night below, as each was known then
            written = simulate_days(
                assessment, day_list, today=day_list[0] if _late(assessment) else None
            )
            click.echo(
                f"[{assessment.id}] {len(written)} new files of simulated batches and outcomes ({day_list[0]} .. {day_list[-1]})"
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
                    tags = {}
                    if _late(assessment):  # the night after the day: its outcomes known by then
                        night = day + dt.timedelta(days=1)
                        simulate_days(assessment, day_list[:i], today=night)
                        tags = {AS_OF_TAG: night.isoformat()}
                    result = job.execute_in_process(
                        partition_key=day.isoformat(),
                        instance=instance,
                        raise_on_error=False,
                        run_config=SILENT_LOGS,
                        tags=tags,
                    )
                    state = "ok" if result.success else "FAILED"
                    failed += not result.success
                    click.echo(
                        f"[{assessment.id}] partition {day} ({i}/{len(day_list)}): {state} (run {result.run_id})"
                    )
                    for message in step_failures(result):
                        click.echo(f"    {message}", err=True)
                last = day_list[-1].isoformat()
                # a hold or rollback fails the release run on purpose (its check blocks promotion)
                release.execute_in_process(
                    partition_key=last,
                    instance=instance,
                    raise_on_error=False,
                    run_config=SILENT_LOGS,
                )
                decision = print_decision(paths, assessment.id)
                if decision == "approve":
                    _sign_off(paths, assessment, day_list)
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
                        run_config=SILENT_LOGS,
                    )
                    failed += not result.success
                    release.execute_in_process(
                        partition_key=last,
                        instance=instance,
                        raise_on_error=False,
                        run_config=SILENT_LOGS,
                    )
                    if print_decision(paths, assessment.id) == "rollback":
                        click.echo(
                            f"[{assessment.id}] version {version} is marked rolled_back in {registry.path}; scoring uses version {registry.latest(usable=True).version} again"
                        )
                if _late(assessment):
                    failed += _outcomes_arrive(paths, assessment, defs, instance, day_list)
                _acknowledge(paths, assessment, day_list)
            deliver_lineage(paths, assessments, defs, instance)
        for assessment in assessments:
            deliver_notices_of(paths, assessment)
        for assessment in assessments:
            print_register(paths, assessment.id, [d.isoformat() for d in day_list])
            print_actions(paths, assessment.id)
            print_releases(paths, assessment.id)
            _print_causal(paths, assessment)
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"\nResults: {paths.database}  (schema impact)")
    click.echo("Open the Dagster UI on this instance with:  make ui   (then http://127.0.0.1:3000)")
    if failed:
        sys.exit(1)


@main.command()
@click.option("--days", default=7, show_default=True)
@click.option("--overwrite", is_flag=True, help="Regenerate batches that already exist.")
@click.pass_obj
def simulate(paths: ProjectPaths, days: int, overwrite: bool) -> None:
    """Write the simulator's daily batches for the last DAYS days."""
    from impact_assets.assessment import discover_assessments

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
@click.option(
    "--proposed-by",
    default=None,
    help="Who proposes the version (default: the OS user); a four-eyes policy keeps them from signing it off.",
)
@click.pass_obj
def train(
    paths: ProjectPaths, assessment_id: str, seed_offset: int | None, proposed_by: str | None
) -> None:
    """Train a new model version on freshly simulated data and register it (the model sensor picks it up)."""
    try:
        assessment = find_assessment(paths, assessment_id)
        offset = (
            seed_offset
            if seed_offset is not None
            else len(assessment.registry.versions())
            if assessment.registry
            else 0
        )
        version = train_version(assessment, seed_offset=offset, proposed_by=proposed_by)
        click.echo(f"registered model version {version}")
    except ImpactAssetsError as exc:
        raise click.ClickException(str(exc)) from exc
