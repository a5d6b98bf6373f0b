"""Assets of the measurements: group metrics and disparities (behind the quality gate and the
inputs' contract), KPIs, drift, scenarios, sensitivity and the causal estimate.
"""

import dagster as dg
import pandas as pd

from impact_assets import pipeline
from impact_assets.assessment import Assessment
from impact_assets.errors import DataContractError
from impact_assets.orchestration._common import (
    RESULTS_POOL,
    AssetKeys,
    check_spec,
    dagster_failures,
)
from impact_assets.orchestration._markdown import selection_rates_markdown
from impact_assets.orchestration._resources import ResultsDatabase


def _blocked(
    context: dg.AssetExecutionContext,
    failures: list[str],
    checks: list[dg.AssetCheckResult] | None = None,
) -> dg.MaterializeResult:
    """Nothing computed on this partition: blocking data-quality checks failed."""
    context.log.warning(
        f"not computed for partition {context.partition_key}: failed blocking checks {', '.join(failures)}"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/partition_row_count": 0,
            "impact_assets/blocked_by": ", ".join(failures),
        },
        data_version=dg.DataVersion(f"blocked:{','.join(failures)}"),
        check_results=checks,
    )


def fairness_assets(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    bindings = assessment.spec.bindings

    contract = check_spec(
        pipeline.CONTRACT_CHECK,
        asset=keys.result("group_metrics"),
        partitions=partitions,
        description="The scored rows meet what fairness metrics need: a non-empty partition, binary non-null labels and decisions, scores in [0, 1].",
    )

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.result("group_metrics"),
        deps=[keys.table(bindings.scored_table)],
        check_specs=[contract],
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "fairlearn"},
        description=(
            "Per group of each sensitive feature and intersection, and overall: n, base rate, selection rate, TPR, FPR, FNR, TNR, "
            "precision, NPV, accuracy, balanced accuracy, F1, AUC, Brier score and calibration error, with bootstrap intervals."
        ),
        metadata={"dagster/table_name": "impact.group_metrics"},
    )
    def _group_metrics(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        violation = None
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment)
            blocked = pipeline.blocking_failures(
                conn, assessment, context.partition_key, ignore=(pipeline.CONTRACT_CHECK,)
            )
            if not blocked:
                try:
                    results = pipeline.compute_fairness(
                        conn, assessment, context.partition_key, context.run.run_id
                    )
                except DataContractError as exc:
                    violation = str(exc)
                pipeline.record_contract(
                    conn, assessment, context.partition_key, context.run.run_id, violation
                )
                blocked = pipeline.blocking_failures(conn, assessment, context.partition_key)
        check = dg.AssetCheckResult(
            check_name=pipeline.CONTRACT_CHECK,
            passed=violation is None,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"violation": violation or "", "blocked_by": ", ".join(blocked)},
        )
        if blocked:
            return _blocked(context, blocked, [check])
        metrics = results.group_metrics
        counts = metrics[metrics["metric"] == "count"]
        return dg.MaterializeResult(
            metadata={
                "dagster/partition_row_count": len(metrics),
                "impact_assets/rows_assessed": results.rows,
                "impact_assets/groups": len(counts),
                "impact_assets/groups_suppressed": int(counts["suppressed"].sum()),
                "impact_assets/model_version": results.model_version,
                "impact_assets/data_version": results.data_version,
                "impact_assets/by_group": dg.MetadataValue.md(selection_rates_markdown(metrics)),
            },
            data_version=dg.DataVersion(f"{results.model_version}:{results.data_version}"),
            check_results=[check],
        )

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.result("disparities"),
        deps=[_group_metrics.key],
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "fairlearn"},
        description="Differences and ratios of group metrics between groups and to overall (fairlearn semantics).",
        metadata={"dagster/table_name": "impact.disparities"},
    )
    def _disparities(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            blocked = pipeline.blocking_failures(conn, assessment, context.partition_key)
            results, _, _ = pipeline.latest_results(conn, assessment, context.partition_key)
        if blocked:
            return _blocked(context, blocked)
        gaps = results.get("disparities")
        if gaps is None or gaps.empty:
            raise dg.Failure(
                description=f"no group metrics for partition {context.partition_key}; materialize group_metrics first"
            )
        ratios = gaps[
            (gaps["method"] == "ratio")
            & (gaps["relative_to"] == "between_groups")
            & gaps["metric"].isin(["demographic_parity", "equalized_odds"])
        ]
        table = "\n".join(
            ["| feature set | disparity | ratio |", "|---|---|---|"]
            + [
                f"| {r.feature_set} | {r.metric} | {'—' if r.value != r.value or r.value is None else f'{r.value:.4f}'} |"
                for r in ratios.itertuples()
            ]
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/partition_row_count": len(gaps),
                "impact_assets/ratios": dg.MetadataValue.md(table),
            }
        )

    return [_group_metrics, _disparities]


def analytics_assets(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """KPIs and cost-benefit (when declared) and drift (when the model registry keeps snapshots)."""
    spec = assessment.spec
    bindings = spec.bindings
    scored = keys.table(bindings.scored_table)
    assets = []
    if spec.analytics.kpis or spec.analytics.cost_benefit is not None:

        @dg.asset(
            pool=RESULTS_POOL,
            key=keys.result("kpis"),
            deps=[scored],
            partitions_def=partitions,
            group_name=assessment.id,
            kinds={"duckdb"},
            description="Business KPIs and cost-benefit of the decisions, overall and per group (SQL aggregates over the scored rows).",
            metadata={"dagster/table_name": "impact.kpis"},
        )
        def _kpis(
            context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
        ) -> dg.MaterializeResult:
            with dagster_failures(), impact_duckdb.get_connection() as conn:
                pipeline.prepare(conn, assessment, sources=False)
                frame = pipeline.compute_business_kpis(
                    conn, assessment, context.partition_key, context.run.run_id
                )
            overall = frame[frame["feature_set"] == "overall"]
            return dg.MaterializeResult(
                metadata={
                    "dagster/partition_row_count": len(frame),
                    **{
                        f"impact_assets/kpi/{r.kpi}": float(r.value)
                        for r in overall.itertuples()
                        if r.value is not None and r.value == r.value
                    },
                }
            )

        assets.append(_kpis)
    scoring = spec.model.registry
    if spec.analytics.drift is not None and scoring is not None:

        @dg.asset(
            pool=RESULTS_POOL,
            key=keys.result("drift"),
            deps=[scored, keys.table(scoring.features_table)],
            partitions_def=partitions,
            group_name=assessment.id,
            kinds={"duckdb", "scipy"},
            description="Drift against the model version's training snapshot: PSI and KS of numeric columns, PSI, chi-square and Jensen-Shannon of categorical ones; features, score, label rate and group mix.",
            metadata={"dagster/table_name": "impact.drift"},
        )
        def _drift(
            context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
        ) -> dg.MaterializeResult:
            with dagster_failures(), impact_duckdb.get_connection() as conn:
                pipeline.prepare(conn, assessment, sources=False)
                frame = pipeline.compute_drift(
                    conn, assessment, context.partition_key, context.run.run_id
                )
            psi = frame[frame["statistic"] == "psi"] if not frame.empty else frame
            table = "\n".join(
                ["| column | role | PSI |", "|---|---|---|"]
                + [
                    f"| {r.column_name} | {r.role} | {'—' if r.value is None or r.value != r.value else f'{r.value:.4f}'} |"
                    for r in psi.itertuples()
                ]
            )
            return dg.MaterializeResult(
                metadata={
                    "dagster/partition_row_count": len(frame),
                    "impact_assets/psi": dg.MetadataValue.md(table),
                }
            )

        assets.append(_drift)
    if spec.analytics.scenarios:

        @dg.asset(
            pool=RESULTS_POOL,
            key=keys.result("scenarios"),
            deps=[scored, *([keys.table(scoring.features_table)] if scoring else [])],
            partitions_def=partitions,
            group_name=assessment.id,
            kinds={"duckdb"},
            description="What-ifs beside the baseline: threshold sweep, group mix, feature shift (re-scored), base rate; selection rates, demographic parity, KPIs and cost-benefit.",
            metadata={"dagster/table_name": "impact.scenarios"},
        )
        def _scenarios(
            context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
        ) -> dg.MaterializeResult:
            with dagster_failures(), impact_duckdb.get_connection() as conn:
                pipeline.prepare(conn, assessment, sources=False)
                frame = pipeline.compute_scenarios(
                    conn, assessment, context.partition_key, context.run.run_id, context.log.info
                )
            return dg.MaterializeResult(
                metadata={
                    "dagster/partition_row_count": len(frame),
                    "impact_assets/side_by_side": dg.MetadataValue.md(scenario_markdown(frame)),
                }
            )

        assets.append(_scenarios)
    if spec.analytics.sensitivity is not None and scoring is not None:

        @dg.asset(
            pool=RESULTS_POOL,
            key=keys.result("sensitivity"),
            deps=[scored, keys.table(scoring.features_table)],
            partitions_def=partitions,
            group_name=assessment.id,
            kinds={"duckdb", "scikit-learn"},
            description=(
                f"Which features drive the {spec.analytics.sensitivity.metric} of "
                f"{spec.analytics.sensitivity.feature_set}: each model feature permuted within the partition, re-scored, "
                f"{spec.analytics.sensitivity.repeats} times; ranked by mean change, with its spread, and the change in accuracy."
            ),
            metadata={"dagster/table_name": "impact.sensitivity"},
        )
        def _sensitivity(
            context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
        ) -> dg.MaterializeResult:
            with dagster_failures(), impact_duckdb.get_connection() as conn:
                pipeline.prepare(conn, assessment, sources=False)
                frame = pipeline.compute_sensitivity(
                    conn, assessment, context.partition_key, context.run.run_id, context.log.info
                )
            ranked = frame[frame["metric"] == "disparity"].sort_values("rank")
            lines = ["| rank | feature | mean change | std |", "|---|---|---|---|"] + [
                f"| {r.rank} | {r.feature} | {r.mean_change:+.4f} | {r.std_change:.4f} |"
                for r in ranked.itertuples()
                if r.mean_change is not None and r.mean_change == r.mean_change
            ]
            return dg.MaterializeResult(
                metadata={
                    "dagster/partition_row_count": len(frame),
                    "impact_assets/drivers": dg.MetadataValue.md("\n".join(lines)),
                }
            )

        assets.append(_sensitivity)
    if spec.analytics.causal:

        @dg.asset(
            pool=RESULTS_POOL,
            key=keys.result("causal_estimates"),
            deps=[scored],
            partitions_def=partitions,
            group_name=assessment.id,
            kinds={"duckdb", "statsmodels"},
            description="Difference-in-differences estimates of rollouts' effects (WLS on segment-day cells, errors clustered by day), with a pre-trend check.",
            metadata={"dagster/table_name": "impact.causal_estimates"},
        )
        def _causal(
            context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
        ) -> dg.MaterializeResult:
            with dagster_failures(), impact_duckdb.get_connection() as conn:
                pipeline.prepare(conn, assessment, sources=False)
                frame = pipeline.compute_causal(
                    conn, assessment, context.partition_key, context.run.run_id
                )
            lines = [
                "| estimate | effect | interval | pre-trend p | note |",
                "|---|---|---|---|---|",
            ]
            for r in frame.itertuples():
                effect = (
                    "—" if r.estimate is None or r.estimate != r.estimate else f"{r.estimate:+.4g}"
                )
                interval = (
                    "—"
                    if r.ci_low is None or r.ci_low != r.ci_low
                    else f"[{r.ci_low:+.4g}, {r.ci_high:+.4g}]"
                )
                trend = (
                    "—"
                    if r.pre_trend_p is None or r.pre_trend_p != r.pre_trend_p
                    else f"{r.pre_trend_p:.3g}"
                )
                lines.append(f"| {r.name} | {effect} | {interval} | {trend} | {r.reason or ''} |")
            return dg.MaterializeResult(
                metadata={
                    "dagster/partition_row_count": len(frame),
                    "impact_assets/estimates": dg.MetadataValue.md("\n".join(lines)),
                }
            )

        assets.append(_causal)
    return assets


def scenario_markdown(frame: pd.DataFrame) -> str:
    """Overall selection rate, net benefit and the largest demographic-parity gap, per scenario."""
    if frame.empty:
        return "no scenarios"
    overall = frame[frame["group_key"] == "overall"]
    lines = [
        "| scenario | variant | result | feature set | value | baseline |",
        "|---|---|---|---|---|---|",
    ]
    shown = overall[
        overall["metric"].isin(
            ["selection_rate", "net_benefit_per_decision", "demographic_parity_ratio"]
        )
    ]
    for r in shown.itertuples():
        value = "—" if r.value is None or r.value != r.value else f"{r.value:.4g}"
        base = "—" if r.baseline is None or r.baseline != r.baseline else f"{r.baseline:.4g}"
        lines.append(
            f"| {r.scenario} | {r.variant} | {r.metric} | {r.feature_set} | {value} | {base} |"
        )
    return "\n".join(lines)
