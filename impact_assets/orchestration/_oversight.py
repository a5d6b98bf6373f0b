"""Where people act in the Dagster UI: jobs with typed run config (the launchpad) that record a
decision on a governance action or a release sign-off, and the sensor that delivers notices.

The jobs record exactly what ``impact-assets actions ...`` and ``impact-assets release sign-off``
record, and report the new state as an observation of the register snapshot asset, so the asset's
page shows who did what. OSS Dagster has no user identity: the name given in the run config is
recorded with the OS user of the run worker; authentication belongs to the deployment.
"""

import datetime as dt
from typing import Literal

import dagster as dg
import duckdb
from pydantic import Field

from impact_assets import oversight, pipeline
from impact_assets.assessment import Assessment
from impact_assets.orchestration._common import RESULTS_POOL, AssetKeys, dagster_failures
from impact_assets.orchestration._markdown import markdown_table
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.storage import migrate

__all__ = [
    "action_decision_job_name",
    "oversight_definitions",
    "oversight_metadata",
    "sign_off_job_name",
]

ACTION_COLUMNS = ("action", "entry", "state", "owner", "due", "breaches", "by", "escalated to")


def action_decision_job_name(assessment_id: str) -> str:
    return f"{assessment_id}__record_action_decision"


def sign_off_job_name(assessment_id: str) -> str:
    return f"{assessment_id}__sign_off_release"


def actions_rows(conn: duckdb.DuckDBPyConnection, assessment_id: str) -> list[tuple]:
    """The assessment's live actions, one row each (``ACTION_COLUMNS``), most urgent first."""
    return conn.execute(
        """SELECT left(action_id, 8), entry_id,
                  status || CASE WHEN status = 'waived' THEN ' until ' || strftime(waiver_expires_at - INTERVAL 1 DAY, '%Y-%m-%d')
                                 WHEN overdue THEN ' (overdue)' ELSE '' END,
                  owner, strftime(due_at, '%Y-%m-%d'), breach_count,
                  CASE status WHEN 'acknowledged' THEN acknowledged_by WHEN 'waived' THEN waived_by || ' / ' || waiver_approver ELSE '' END,
                  coalesce(escalated_to, '')
           FROM impact.governance_actions_current WHERE assessment_id = ? AND status <> 'resolved'
           ORDER BY overdue DESC, due_at""",
        [assessment_id],
    ).fetchall()


class ActionDecisionConfig(dg.Config):
    """A decision on one governance action, as ``impact-assets actions`` takes it."""

    action_id: str = Field(description="The action's id, or its first 8 characters.")
    decision: Literal["acknowledge", "assign", "waive", "resolve", "comment"]
    by: str = Field(description="Who decides (recorded with the run worker's OS user).")
    rationale: str = Field(default="", description="Why; required to waive, resolve or comment.")
    assign_to: str = Field(default="", description="assign: the new owner.")
    approver: str = Field(default="", description="waive: who approves the waiver (not `by`).")
    expires_on: str = Field(default="", description="waive: last day of the waiver, YYYY-MM-DD.")


class SignOffConfig(dg.Config):
    """One approver's sign-off of a recommended model version."""

    model_version: str = Field(description="The model version signed off.")
    by: str = Field(description="The approver signing (recorded with the run worker's OS user).")
    rationale: str = Field(description="What the approver checked and why they sign.")


def oversight_metadata(conn: duckdb.DuckDBPyConnection, assessment_id: str) -> dict[str, object]:
    """The live actions and every model version's release state, as asset metadata."""
    rows = actions_rows(conn, assessment_id)
    releases = [
        (
            s.model_version,
            s.state,
            s.recommendation,
            f"{s.signatures} of {s.sign_offs_required}",
            ", ".join(s.signers),
        )
        for s in oversight.release_state(conn, assessment_id)
    ]
    return {
        "impact_assets/open_actions": len(rows),
        "impact_assets/actions": dg.MetadataValue.md(markdown_table(ACTION_COLUMNS, rows)),
        "impact_assets/releases": dg.MetadataValue.md(
            markdown_table(
                ("version", "state", "recommendation", "sign-offs", "signed by"), releases
            )
        ),
    }


def _observe(
    context: dg.OpExecutionContext, conn, assessment: Assessment, keys: AssetKeys, text: str
) -> None:
    context.log_event(
        dg.AssetObservation(
            asset_key=keys.result("impact_register_snapshot"),
            description=text,
            metadata={"impact_assets/decision": text, **oversight_metadata(conn, assessment.id)},
        )
    )


def oversight_definitions(
    assessment: Assessment, keys: AssetKeys, interval: int
) -> tuple[list[dg.JobDefinition], list[dg.SensorDefinition]]:
    """The decision and sign-off jobs, and the notifications sensor, of one assessment."""
    spec = assessment.spec

    @dg.op(
        name=f"{spec.id}__record_action_decision_op",
        pool=RESULTS_POOL,
        description="Records one decision on a governance action.",
    )
    def record_decision(
        context: dg.OpExecutionContext, config: ActionDecisionConfig, impact_duckdb: ResultsDatabase
    ) -> None:
        expires = dt.date.fromisoformat(config.expires_on) if config.expires_on.strip() else None
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            migrate(conn)
            state = oversight.decide_action(
                conn,
                spec.id,
                config.action_id,
                config.decision,
                by=config.by,
                governance=spec.governance,
                rationale=config.rationale,
                assignee=config.assign_to,
                approver=config.approver,
                expires_on=expires,
            )
            text = f"{config.by}: {config.decision} {state.entry_id} (action {state.action_id[:8]}, now {state.last_state})"
            context.log.info(text)
            _observe(context, conn, assessment, keys, text)

    @dg.op(
        name=f"{spec.id}__sign_off_release_op",
        pool=RESULTS_POOL,
        description="Records one approver's sign-off of a recommended model version.",
    )
    def sign_off(
        context: dg.OpExecutionContext, config: SignOffConfig, impact_duckdb: ResultsDatabase
    ) -> None:
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            migrate(conn)
            state = pipeline.sign_off_release(
                conn,
                assessment,
                config.model_version,
                signer=config.by,
                rationale=config.rationale,
                via="dagster",
            )
            text = f"{config.by} signed off model version {state.model_version}: {state.state} ({state.signatures} of {state.sign_offs_required})"
            context.log.info(text)
            _observe(context, conn, assessment, keys, text)

    tags = {"impact_assets/assessment": spec.id}

    @dg.job(
        name=action_decision_job_name(spec.id),
        tags=tags,
        description="Acknowledge, assign, waive, resolve or comment on a governance action (fill the run config in the launchpad).",
    )
    def decision_job() -> None:
        record_decision()

    @dg.job(
        name=sign_off_job_name(spec.id),
        tags=tags,
        description="Sign off a model version the register recommends for release (fill the run config in the launchpad).",
    )
    def sign_off_job() -> None:
        sign_off()

    @dg.sensor(
        name=f"{spec.id}__notifications_sensor",
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Delivers the assessment's pending notices (breaches, actions, escalations, releases, failed runs) to its channels; a channel that is down gets them on a later tick.",
    )
    def notifications(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        report = oversight.deliver_notices(spec, assessment.paths)
        return dg.SkipReason(report.summary())

    return [decision_job, sign_off_job], [notifications]
