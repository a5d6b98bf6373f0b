"""The release decision on the assessed model version (blocking check) and the promoted model."""

import dagster as dg

from impact_assets import oversight, pipeline
from impact_assets.assessment import Assessment
from impact_assets.orchestration._common import (
    RESULTS_POOL,
    AssetKeys,
    check_spec,
    dagster_failures,
)
from impact_assets.orchestration._resources import ResultsDatabase

RELEASE_CHECK = "release_is_approved"


def release_assets(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    decision_key = keys.result("release_decision")

    @dg.asset(
        pool=RESULTS_POOL,
        key=decision_key,
        deps=[keys.result("impact_register_snapshot")],
        automation_condition=dg.AutomationCondition.eager(),
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb"},
        check_specs=[
            check_spec(
                RELEASE_CHECK,
                asset=decision_key,
                partitions=partitions,
                description="The assessed model version may be promoted: the register meets the spec's release criteria (a hold warns; a rollback is an error).",
            )
        ],
        description="approve / hold / rollback of the assessed model version, from the register and the spec's release criteria.",
        metadata={"dagster/table_name": "impact.release_decisions"},
    )
    def _release_decision(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            decided = pipeline.decide_release(conn, assessment, context.partition_key)
        summary = (
            f"{decided.decision} model version {decided.model_version}"
            + (f" (roll back to {decided.rollback_to})" if decided.rollback_to else "")
            + (", awaiting sign-off" if decided.state == "awaiting_sign_off" else "")
        )
        context.log.info(f"release decision: {summary}: {'; '.join(decided.reasons)}")
        return dg.MaterializeResult(
            metadata={
                "impact_assets/decision": decided.decision,
                "impact_assets/release_state": decided.state,
                "impact_assets/model_version": decided.model_version,
                "impact_assets/rollback_to": decided.rollback_to or "",
                "impact_assets/reasons": dg.MetadataValue.md(
                    "\n".join(f"- {r}" for r in decided.reasons)
                ),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=RELEASE_CHECK,
                    passed=decided.decision == "approve",
                    severity=dg.AssetCheckSeverity.ERROR
                    if decided.decision == "rollback"
                    else dg.AssetCheckSeverity.WARN,
                    description=f"{summary}: {'; '.join(decided.reasons)}",
                    metadata={
                        "decision": decided.decision,
                        "model_version": decided.model_version,
                        "reasons": "; ".join(decided.reasons),
                    },
                )
            ],
            tags={
                "impact_assets/model_version": decided.model_version,
                "impact_assets/decision": decided.decision,
            },
        )

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.result("promoted_model"),
        deps=[decision_key],
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"scikit-learn"},
        description="The model version in service after the release decision: the registry's approved.json points at the assessed version once its release is approved (signed off, where the policy asks); after a hold or rollback the approved version stays in service.",
        metadata={
            "impact_assets/registry": str(assessment.registry.path if assessment.registry else "")
        },
    )
    def _promoted_model(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            version = conn.execute(
                "SELECT model_version FROM impact.release_decisions WHERE assessment_id = ? AND partition_key = ? ORDER BY decided_at DESC LIMIT 1",
                [assessment.id, context.partition_key],
            ).fetchall()[0][0]
            states = oversight.release_state(conn, assessment.id)
        (state,) = [s for s in states if s.model_version == version]
        registry = assessment.registry
        promoted = state.state == "approved"
        if promoted and registry is not None and version in registry.versions():
            registry.promote(
                version, {"partition": context.partition_key, "run_id": context.run.run_id}
            )
        serving = oversight.serving_version(registry, states)
        outcome = (
            f"model version {version} serves"
            if promoted and serving == version
            else f"model version {version} not promoted ({state.state}, {state.signatures} of "
            f"{state.sign_offs_required} sign-offs); "
            + (f"version {serving} serves" if serving else "no version is approved for service")
        )
        context.log.info(outcome)
        return dg.MaterializeResult(
            metadata={
                "impact_assets/serving_version": serving or "",
                "impact_assets/outcome": outcome,
                "impact_assets/model_version": version,
                "impact_assets/release_state": state.state,
                "impact_assets/sign_offs": f"{state.signatures} of {state.sign_offs_required}",
                "impact_assets/promoted": promoted,
            }
        )

    return [_release_decision, _promoted_model]
