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
                blocking=True,
                description="The assessed model version may be promoted: the register meets the spec's release criteria.",
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
                    severity=dg.AssetCheckSeverity.ERROR,
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
        description="Points the registry's approved.json at the recommended model version once its release is approved (signed off, where the policy asks); never runs on a hold or rollback.",
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
            (state,) = oversight.release_state(conn, assessment.id, version)
        registry = assessment.registry
        promoted = state.state == "approved"
        if promoted and registry is not None and version in registry.versions():
            registry.promote(
                version, {"partition": context.partition_key, "run_id": context.run.run_id}
            )
        if not promoted:
            context.log.info(
                f"model version {version} not promoted: {state.state} ({state.signatures} of {state.sign_offs_required} sign-offs)"
            )
        return dg.MaterializeResult(
            metadata={
                "impact_assets/model_version": version,
                "impact_assets/release_state": state.state,
                "impact_assets/sign_offs": f"{state.signatures} of {state.sign_offs_required}",
                "impact_assets/promoted": promoted,
            }
        )

    return [_release_decision, _promoted_model]
