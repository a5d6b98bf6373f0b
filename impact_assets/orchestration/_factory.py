"""Dagster definitions for one assessment: a thin adapter over :mod:`impact_assets.pipeline`.

Asset keys are prefixed by the assessment id and all assets of an assessment form one group:

* ``<id>/<source>`` — raw files, external assets; their per-partition data versions are reported
  as observations by the SQL models that read them;
* ``<id>/<subfolders>/<model>`` — one per ``dbt_like_sql`` model;
* ``<id>/predictions`` — scores of the registry's latest model version (when the spec has a registry);
* ``<id>/group_metrics``, ``<id>/disparities``, ``<id>/impact_register_snapshot``.
"""

import contextlib
import datetime
import functools
import hashlib
from collections.abc import Iterator, Sequence

import dagster as dg
import duckdb
import pandas as pd

from impact_assets import pipeline, quality
from impact_assets._markdown import markdown_table
from impact_assets.assessment import Assessment
from impact_assets.errors import DataContractError, ImpactAssetsError
from impact_assets.modeling import PREDICTIONS_TABLE
from impact_assets.orchestration._automation import build_automation
from impact_assets.orchestration._markdown import register_markdown, selection_rates_markdown
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.quality import QualityCheck, assessment_checks
from impact_assets.register import STATUSES
from impact_assets.settings import ProjectPaths

__all__ = [
    "DUCKDB_RESOURCE_KEY",
    "RELEASE_CHECK",
    "RESULTS_POOL",
    "assessment_job_name",
    "build_assessment_definitions",
    "definitions_for",
    "register_check_name",
    "release_job_name",
]

DUCKDB_RESOURCE_KEY = "impact_duckdb"
#: Dagster pool of every step that opens the results database. DuckDB admits one writing process per
#: file; with a limit of 1 on this pool (``dagster instance concurrency set impact_assets_results 1``),
#: steps of concurrent runs queue in Dagster instead of retrying on the file lock.
RESULTS_POOL = "impact_assets_results"
DATA_VERSION_TAG = "dagster/data_version"


def assessment_job_name(assessment_id: str) -> str:
    """Name of the job that materializes a whole assessment partition."""
    return f"{assessment_id}__assessment"


def release_job_name(assessment_id: str) -> str:
    """Name of the job that decides on the release of the assessed model version and promotes it."""
    return f"{assessment_id}__release"


def register_check_name(entry_id: str) -> str:
    """Name of the asset check of a register entry."""
    return f"{entry_id}_within_thresholds"


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Turn a package error into a ``dg.Failure`` carrying its context as metadata."""
    try:
        yield
    except ImpactAssetsError as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={f"impact_assets/{k}": str(v) for k, v in exc.context.items()},
        ) from exc


class _Keys:
    def __init__(self, assessment: Assessment) -> None:
        self.assessment = assessment
        self.prefix = [assessment.id]

    def table(self, name: str) -> dg.AssetKey:
        """Key of whatever a SQL model may read: a model, a source, or the predictions."""
        if name in self.assessment.sql.models:
            return dg.AssetKey([*self.prefix, *self.assessment.sql.models[name].prefix, name])
        return dg.AssetKey([*self.prefix, name])

    def result(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.prefix, name])


def _column_lineage(assessment: Assessment, keys: _Keys, name: str) -> dict[str, object]:
    deps = assessment.sql.column_lineage.get(name)
    if not deps:
        return {}
    return {
        "dagster/column_lineage": dg.TableColumnLineage(
            deps_by_column={
                column: [
                    dg.TableColumnDep(asset_key=keys.table(d.table), column_name=d.column)
                    for d in upstream
                ]
                for column, upstream in deps.items()
            }
        )
    }


def _quality_tables(assessment: Assessment, name: str) -> list[str]:
    """Tables whose expectations run in the step of asset ``name``: itself, and sources it is first to read."""
    tables = [name]
    for source in assessment.spec.sources:
        readers = [m for m in assessment.sql.order if source in assessment.sql.models[m].reads]
        if readers and readers[0] == name:
            tables.append(source)
    return tables


def _check_spec_name(assessment: Assessment, table: str, check: QualityCheck) -> str:
    return f"{table}__{check.name}" if table in assessment.spec.sources else check.name


def _quality_specs(
    assessment: Assessment, key: dg.AssetKey, tables: list[str]
) -> list[dg.AssetCheckSpec]:
    checks = assessment_checks(assessment.spec)
    return [
        dg.AssetCheckSpec(
            _check_spec_name(assessment, c.table, c),
            asset=key,
            description=(
                f"{c.expectation}({c.kwargs_json}) on {'raw source ' if c.table in assessment.spec.sources else ''}`{c.table}`; "
                f"severity {c.severity}{'; blocks fairness metrics and the register for the partition' if c.blocking and c.severity == 'error' else ''}"
                f"{' (derived from the bindings)' if c.derived else ''}"
            ),
            metadata={
                "impact_assets/severity": c.severity,
                "impact_assets/blocking": c.blocking,
                "impact_assets/table": c.table,
            },
        )
        for c in checks
        if c.table in tables
    ]


def _quality_check_results(
    assessment: Assessment,
    conn: duckdb.DuckDBPyConnection,
    tables: list[str],
    partition_key: str,
    run_id: str,
) -> list[dg.AssetCheckResult]:
    out = []
    for table in tables:
        for r in pipeline.run_quality(conn, assessment, table, partition_key, run_id):
            out.append(
                dg.AssetCheckResult(
                    check_name=_check_spec_name(assessment, table, r.check),
                    passed=r.success,
                    severity=dg.AssetCheckSeverity.ERROR
                    if r.check.severity == "error"
                    else dg.AssetCheckSeverity.WARN,
                    metadata={
                        "expectation": r.check.expectation,
                        "kwargs": r.check.kwargs_json,
                        "severity": r.check.severity,
                        "blocking": r.check.blocking,
                        "observed_value": r.observed_value
                        if r.observed_value is not None
                        else dg.MetadataValue.null(),
                        "element_count": dg.MetadataValue.int(r.element_count)
                        if r.element_count is not None
                        else dg.MetadataValue.null(),
                        "unexpected_count": dg.MetadataValue.int(r.unexpected_count)
                        if r.unexpected_count is not None
                        else dg.MetadataValue.null(),
                        "unexpected_percent": dg.MetadataValue.float(r.unexpected_percent)
                        if r.unexpected_percent is not None
                        else dg.MetadataValue.null(),
                        "sample_unexpected_values": ", ".join(r.sample) if r.sample else "",
                    },
                )
            )
    return out


def _freshness(assessment: Assessment) -> dg.FreshnessPolicy | None:
    fresh = assessment.spec.quality.freshness
    if fresh is None:
        return None
    return dg.FreshnessPolicy.cron(
        deadline_cron=fresh.deadline_cron,
        lower_bound_delta=datetime.timedelta(hours=fresh.lower_bound_hours),
        timezone=assessment.spec.partitions.timezone,
    )


def _source_specs(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=keys.table(name),
            description=source.description or f"Raw {source.format} files: {source.path}",
            group_name=assessment.id,
            partitions_def=partitions,
            kinds={source.format},
            freshness_policy=_freshness(assessment),
            metadata={
                "impact_assets/path": str(assessment.source_path(name)),
                "impact_assets/format": source.format,
            },
        )
        for name, source in assessment.spec.sources.items()
    ]


def _sql_asset(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition, name: str
) -> dg.AssetsDefinition:
    model = assessment.sql.models[name]
    sources_read = sorted(t for t in model.reads if t in assessment.spec.sources)
    tables = _quality_tables(assessment, name)
    check_specs = _quality_specs(assessment, keys.table(name), tables)

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.table(name),
        check_specs=check_specs,
        deps=[keys.table(t) for t in sorted(model.reads)],
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "sql"},
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        description=f"SQL model `{model.path.name}` ({'/'.join(model.prefix) or 'top level'}), table `{assessment.schema}.{name}`.",
        metadata={
            "dagster/table_name": f"{assessment.schema}.{name}",
            "impact_assets/sql_path": str(model.path),
            **_column_lineage(assessment, keys, name),
        },
    )
    def _sql_model(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        if check_specs:
            quality.warm_up()
        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment)
            fingerprints = pipeline.source_fingerprints(
                conn, assessment, context.partition_key, context.run.run_id
            )
            for source in sources_read:
                prints = fingerprints[source]
                context.log_event(
                    dg.AssetObservation(
                        asset_key=keys.table(source),
                        partition=context.partition_key,
                        tags={DATA_VERSION_TAG: prints.get(context.partition_key, "empty")},
                    )
                )
            written = pipeline.run_sql_model(conn, assessment, name, context.partition_key)
            check_results = _quality_check_results(
                assessment, conn, tables, context.partition_key, context.run.run_id
            )
        if written.rebuilt:
            context.log.warning(
                f"{written.table}: the query's columns changed, so the table was rebuilt from the whole query"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written.total_rows,
                "dagster/partition_row_count": written.partition_rows,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(c, t) for c, t in written.columns]
                ),
                "impact_assets/sql": dg.MetadataValue.md(f"```sql\n{model.sql.strip()}\n```"),
                **_column_lineage(assessment, keys, name),
            },
            check_results=check_results,
        )

    return _sql_model


def _predictions_asset(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    scoring = assessment.spec.model.registry
    assert scoring is not None
    check_specs = _quality_specs(assessment, keys.table(PREDICTIONS_TABLE), [PREDICTIONS_TABLE])

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.table(PREDICTIONS_TABLE),
        deps=[keys.table(scoring.features_table)],
        check_specs=check_specs,
        freshness_policy=_freshness(assessment),
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "scikit-learn"},
        description=f"Scores and decisions of the latest version of model `{assessment.spec.model.name}` in the registry, one row per case.",
        metadata={
            "dagster/table_name": f"{assessment.schema}.{PREDICTIONS_TABLE}",
            "impact_assets/registry": str(assessment.registry.path if assessment.registry else ""),
        },
    )
    def _predictions(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        if check_specs:
            quality.warm_up()
        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            scored = pipeline.score(conn, assessment, context.partition_key)
            check_results = _quality_check_results(
                assessment, conn, [PREDICTIONS_TABLE], context.partition_key, context.run.run_id
            )
        context.log.info(f"scored {scored.rows} rows with model version {scored.model_version}")
        return dg.MaterializeResult(
            metadata={
                "dagster/partition_row_count": scored.rows,
                "impact_assets/model_version": scored.model_version,
                "impact_assets/mean_score": scored.mean_score,
                "impact_assets/positive_decision_rate": scored.approval_rate,
                "impact_assets/decision_threshold": scoring.decision_threshold,
            },
            tags={"impact_assets/model_version": scored.model_version},
            check_results=check_results,
        )

    return _predictions


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


def _fairness_assets(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    bindings = assessment.spec.bindings

    contract = dg.AssetCheckSpec(
        pipeline.CONTRACT_CHECK,
        asset=keys.result("group_metrics"),
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
        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment)
            blocked = pipeline.blocking_failures(conn, assessment, context.partition_key)
            if not blocked:
                try:
                    results = pipeline.compute_fairness(
                        conn, assessment, context.partition_key, context.run.run_id
                    )
                except DataContractError as exc:
                    violation = str(exc)
                    pipeline.record_contract_violation(
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
        with _failures(), impact_duckdb.get_connection() as conn:
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


def _analytics_assets(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition
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
            with _failures(), impact_duckdb.get_connection() as conn:
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
            with _failures(), impact_duckdb.get_connection() as conn:
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
            with _failures(), impact_duckdb.get_connection() as conn:
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
            with _failures(), impact_duckdb.get_connection() as conn:
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
            with _failures(), impact_duckdb.get_connection() as conn:
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


def _report_asset(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition, snapshot: dg.AssetKey
) -> dg.AssetsDefinition:
    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.result("impact_report"),
        deps=[snapshot],
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb", "html"},
        description="The impact report of the partition (Markdown and self-contained HTML, plots embedded) in the reports folder.",
    )
    def _report(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        from impact_assets.report import build_report

        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            report = build_report(
                conn, assessment, context.partition_key, assessment.paths.state_dir / "reports"
            )
        context.log.info(f"impact report written to {report.html_path}")
        return dg.MaterializeResult(
            metadata={
                "impact_assets/report": dg.MetadataValue.md(report.markdown),
                "impact_assets/html": dg.MetadataValue.path(str(report.html_path)),
                "impact_assets/markdown": dg.MetadataValue.path(str(report.markdown_path)),
                "impact_assets/plots": report.plots,
            }
        )

    return _report


def _snapshot_asset(
    assessment: Assessment,
    keys: _Keys,
    partitions: dg.PartitionsDefinition,
    upstream: list[dg.AssetKey],
) -> dg.AssetsDefinition:
    entries = assessment.spec.register_entries
    thresholds = {
        e.id: (e.thresholds.warn, e.thresholds.breach, e.thresholds.direction) for e in entries
    }
    deciding = {e.id: e.thresholds.decide_on for e in entries}
    checks = [
        dg.AssetCheckSpec(
            register_check_name(e.id),
            asset=keys.result("impact_register_snapshot"),
            description=f"{e.outcome} ({e.impact} for {e.stakeholder}; owner {e.owner}; on breach: {e.action})",
        )
        for e in entries
    ]

    @dg.asset(
        pool=RESULTS_POOL,
        key=keys.result("impact_register_snapshot"),
        deps=upstream,
        partitions_def=partitions,
        group_name=assessment.id,
        kinds={"duckdb"},
        check_specs=checks,
        owners=[o for o in assessment.spec.owners if "@" in o] or None,
        description="The impact register evaluated on this partition: one row per entry with value, thresholds, status and reason; appended, never overwritten.",
        metadata={"dagster/table_name": "impact.register_snapshots"},
    )
    def _snapshot(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            snapshot, evaluated = pipeline.snapshot_register(
                conn, assessment, context.partition_key, context.run.run_id
            )
        counts = {status: sum(r.status == status for r in evaluated) for status in STATUSES}
        with impact_duckdb.get_connection() as conn:
            actions = conn.execute(
                "SELECT entry_id, action_type, owner, strftime(due_at, '%Y-%m-%d') AS due, breach_count, overdue "
                "FROM impact.governance_actions_current WHERE assessment_id = ? AND status = 'open' ORDER BY due_at",
                [assessment.id],
            ).fetchall()
        level = snapshot.impact_level
        extra: dict[str, object] = {
            "impact_assets/open_actions": len(actions),
            "impact_assets/actions": dg.MetadataValue.md(
                markdown_table(("entry", "action", "owner", "due", "breaches", "overdue"), actions)
            ),
        }
        if level is not None:
            extra |= {
                "impact_assets/impact_level": level.level,
                "impact_assets/impact_score": level.score,
                "impact_assets/raw_impact_score": level.raw_score,
                "impact_assets/mitigation_score": level.mitigation_score,
            }
        check_results = [
            dg.AssetCheckResult(
                check_name=register_check_name(r.entry_id),
                passed=r.status == "pass",
                severity=dg.AssetCheckSeverity.ERROR
                if r.status == "breach"
                else dg.AssetCheckSeverity.WARN,
                metadata={
                    "status": r.status,
                    "value": dg.MetadataValue.float(r.value)
                    if r.value is not None
                    else dg.MetadataValue.null(),
                    "ci_low": dg.MetadataValue.float(r.ci_low)
                    if r.ci_low is not None
                    else dg.MetadataValue.null(),
                    "ci_high": dg.MetadataValue.float(r.ci_high)
                    if r.ci_high is not None
                    else dg.MetadataValue.null(),
                    "n": dg.MetadataValue.int(r.n) if r.n is not None else dg.MetadataValue.null(),
                    "threshold_warn": dg.MetadataValue.float(thresholds[r.entry_id][0])
                    if thresholds[r.entry_id][0] is not None
                    else dg.MetadataValue.null(),
                    "threshold_breach": thresholds[r.entry_id][1],
                    "direction": thresholds[r.entry_id][2],
                    "decide_on": deciding[r.entry_id],
                    "reason": r.reason,
                },
            )
            for r in evaluated
        ]
        context.log.info("register: " + ", ".join(f"{k}={v}" for k, v in counts.items() if v))
        return dg.MaterializeResult(
            metadata={
                "impact_assets/snapshot_id": snapshot.snapshot_id,
                "impact_assets/snapshot_version": snapshot.snapshot_version,
                **{f"impact_assets/status/{status}": count for status, count in counts.items()},
                "impact_assets/register": dg.MetadataValue.md(
                    register_markdown(evaluated, thresholds)
                ),
                **extra,
            },
            check_results=check_results,
        )

    return _snapshot


RELEASE_CHECK = "release_is_approved"


def _release_assets(
    assessment: Assessment, keys: _Keys, partitions: dg.PartitionsDefinition
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
            dg.AssetCheckSpec(
                RELEASE_CHECK,
                asset=decision_key,
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
        with _failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            decided = pipeline.decide_release(conn, assessment, context.partition_key)
        summary = f"{decided.decision} model version {decided.model_version}" + (
            f" (roll back to {decided.rollback_to})" if decided.rollback_to else ""
        )
        context.log.info(f"release decision: {summary}: {'; '.join(decided.reasons)}")
        return dg.MaterializeResult(
            metadata={
                "impact_assets/decision": decided.decision,
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
        description="Points the registry's approved.json at the model version whose release was approved; never runs on a hold or rollback.",
        metadata={
            "impact_assets/registry": str(assessment.registry.path if assessment.registry else "")
        },
    )
    def _promoted_model(
        context: dg.AssetExecutionContext, impact_duckdb: ResultsDatabase
    ) -> dg.MaterializeResult:
        with _failures(), impact_duckdb.get_connection() as conn:
            version = conn.execute(
                "SELECT model_version FROM impact.release_decisions WHERE assessment_id = ? AND partition_key = ? ORDER BY decided_at DESC LIMIT 1",
                [assessment.id, context.partition_key],
            ).fetchall()[0][0]
        registry = assessment.registry
        if registry is not None and version in registry.versions():
            registry.promote(
                version, {"partition": context.partition_key, "run_id": context.run.run_id}
            )
        return dg.MaterializeResult(metadata={"impact_assets/model_version": version})

    return [_release_decision, _promoted_model]


@functools.cache
def _duckdb_resource(database: str) -> ResultsDatabase:
    """One resource object per results database: assessments of one project share it, and
    ``Definitions.merge`` accepts a resource key twice only when it is the same object."""
    return ResultsDatabase(database=database)


def build_assessment_definitions(assessment: Assessment) -> dg.Definitions:
    """Assets, checks, job and resources of one assessment.

    Args:
        assessment: A loaded assessment (see :func:`impact_assets.load_assessment`).

    Returns:
        Definitions to merge with others; the DuckDB resource points at the installation's database.
    """
    spec = assessment.spec
    keys = _Keys(assessment)
    partitions = dg.DailyPartitionsDefinition(
        start_date=spec.partitions.start_date.isoformat(), timezone=spec.partitions.timezone
    )
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = list(
        _source_specs(assessment, keys, partitions)
    )
    assets += [_sql_asset(assessment, keys, partitions, name) for name in assessment.sql.order]
    if spec.model.registry is not None:
        assets.append(_predictions_asset(assessment, keys, partitions))
    fairness = _fairness_assets(assessment, keys, partitions)
    assets += fairness
    analytics = _analytics_assets(assessment, keys, partitions)
    assets += analytics
    snapshot = _snapshot_asset(
        assessment, keys, partitions, [a.key for a in [*fairness, *analytics]]
    )
    assets += [snapshot, _report_asset(assessment, keys, partitions, snapshot.key)]
    release = _release_assets(assessment, keys, partitions)
    assets += release
    release_selection = dg.AssetSelection.assets(*release)
    job = dg.define_asset_job(
        assessment_job_name(spec.id),
        selection=dg.AssetSelection.groups(spec.id).materializable() - release_selection,
        description=f"Assess one daily partition of {spec.title}: SQL models, scoring, quality checks, group metrics, register snapshot.",
        tags={"impact_assets/assessment": spec.id},
    )
    release_job = dg.define_asset_job(
        release_job_name(spec.id),
        selection=release_selection,
        description="Decide on the release of the assessed model version (approve / hold / rollback) and promote it when approved.",
        tags={"impact_assets/assessment": spec.id},
    )
    schedules, sensors = build_automation(
        assessment,
        job,
        partitions,
        {name: keys.table(name) for name in spec.sources},
        keys.result("impact_register_snapshot"),
        [keys.result("release_decision")],
        keys.table(PREDICTIONS_TABLE),
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job, release_job],
        schedules=schedules,
        sensors=sensors,
        resources={DUCKDB_RESOURCE_KEY: _duckdb_resource(str(assessment.paths.database))},
    )


def definitions_for(assessments: Sequence[Assessment], paths: ProjectPaths) -> dg.Definitions:
    """Definitions of ``assessments``, merged into one code location, with the sensor that delivers
    their OpenLineage events.

    Runs execute their steps in one process: every step writes the same DuckDB file, which takes one
    writing process at a time, so separate step processes would only queue on its lock (and pay their
    start-up each).
    """
    from impact_assets.lineage import lineage_sensor

    return dg.Definitions.merge(
        *(build_assessment_definitions(a) for a in assessments),
        dg.Definitions(
            sensors=[lineage_sensor(assessments, paths)], executor=dg.in_process_executor
        ),
    )
