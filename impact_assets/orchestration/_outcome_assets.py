"""The outcome-based results of a partition's cohort, with the outcomes' contract as checks."""

import dagster as dg

from impact_assets import pipeline
from impact_assets._markdown import markdown_table
from impact_assets.assessment import Assessment
from impact_assets.errors import DataContractError
from impact_assets.orchestration._common import (
    RESULTS_POOL,
    AssetKeys,
    as_of,
    check_spec,
    dagster_failures,
)
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.spec import OVERALL

#: Group metrics shown in the asset's metadata, realised beside estimated.
SHOWN = ("true_positive_rate", "false_positive_rate", "precision", "accuracy")


def _number(value: object) -> str:
    return "—" if value is None or value != value else f"{value:.3g}"


def outcome_assets(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """``outcome_metrics`` when the spec declares outcomes that arrive late (else nothing)."""
    spec = assessment.spec
    outcomes = spec.outcomes
    if outcomes is None:
        return []
    key = keys.result("outcome_metrics")
    table = outcomes.table or spec.bindings.scored_table
    checks = [
        check_spec(
            pipeline.OUTCOMES_CONTRACT,
            asset=key,
            partitions=partitions,
            description=f"The outcomes in `{table}` of the partition's cohort: one per decision, binary, observed on or after the decision.",
        ),
    ]
    if outcomes.table is not None:
        checks.append(
            check_spec(
                pipeline.UNKNOWN_OUTCOMES,
                asset=key,
                partitions=partitions,
                description=f"Every outcome in `{table}` belongs to a decision of `{spec.bindings.scored_table}`.",
            )
        )
    deps = [keys.table(spec.bindings.scored_table)]
    if outcomes.table is not None:
        deps.append(keys.table(outcomes.table))

    @dg.asset(
        pool=RESULTS_POOL,
        key=key,
        deps=deps,
        check_specs=checks,
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "fairlearn"},
        description=(
            f"Outcome-based metrics of the partition's cohort (decisions of a {outcomes.cohort}, matured "
            f"{outcomes.maturity_days} days after its last day): realised on the decisions with an outcome, "
            "estimated from calibrated scores (CBPE) until the cohort matures, and label coverage by group."
        ),
        metadata={"dagster/table_name": "impact.outcome_group_metrics"},
    )
    def _outcome_metrics(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        violation = None
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment)
            try:
                results = pipeline.compute_outcomes(
                    conn,
                    assessment,
                    context.partition_key,
                    context.run.run_id,
                    today=as_of(context),
                )
            except DataContractError as exc:
                violation = str(exc)
            quality = pipeline.latest_quality(conn, assessment, context.partition_key)
        warned = quality[quality["check_name"] == pipeline.UNKNOWN_OUTCOMES]
        check_results = [
            dg.AssetCheckResult(
                check_name=pipeline.OUTCOMES_CONTRACT,
                passed=violation is None,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"violation": violation or ""},
            )
        ]
        if outcomes.table is not None:
            problem = (
                None
                if warned.empty or warned.iloc[0]["success"]
                else str(warned.iloc[0]["observed_value"])
            )
            check_results.append(
                dg.AssetCheckResult(
                    check_name=pipeline.UNKNOWN_OUTCOMES,
                    passed=problem is None,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"problem": problem or ""},
                )
            )
        if violation is not None:
            context.log.warning(f"outcomes not assessed: {violation}")
            return dg.MaterializeResult(
                metadata={"impact_assets/blocked_by": violation},
                check_results=check_results,
                data_version=dg.DataVersion("outcomes_contract_broken"),
            )
        metrics = results.group_metrics
        overall = (
            metrics[(metrics["feature_set"] == OVERALL) & metrics["metric"].isin(SHOWN)]
            if not metrics.empty
            else metrics
        )
        rows = [
            (r.metric, r.basis, _number(r.value), _number(r.ci_low), _number(r.ci_high))
            for r in overall.itertuples()
        ]
        coverage = results.label_coverage
        return dg.MaterializeResult(
            metadata={
                "impact_assets/cohort": results.cohort.key,
                "impact_assets/matured": results.matured,
                "impact_assets/matures_on": results.matures_on.isoformat(),
                "impact_assets/label_coverage": dg.MetadataValue.float(results.coverage)
                if results.coverage is not None
                else dg.MetadataValue.null(),
                "impact_assets/outcomes_version": results.outcomes_version,
                "impact_assets/overall": dg.MetadataValue.md(
                    markdown_table(("metric", "basis", "value", "low", "high"), rows)
                ),
                "impact_assets/coverage_by_group": dg.MetadataValue.md(
                    markdown_table(
                        ("feature set", "group", "decisions", "observable", "labelled", "coverage"),
                        [
                            (
                                r.feature_set,
                                r.group_key,
                                r.decisions,
                                r.observable,
                                r.labelled,
                                _number(r.coverage),
                            )
                            for r in coverage.itertuples()
                        ],
                    )
                ),
            },
            check_results=check_results,
            data_version=dg.DataVersion(
                f"{results.cohort.key}:{results.outcomes_version}:{results.matured}"
            ),
        )

    return [_outcome_metrics]
