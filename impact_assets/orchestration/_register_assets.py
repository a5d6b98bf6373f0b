"""The register snapshot with its entry checks, and the impact report built from it."""

import dagster as dg

from impact_assets import pipeline
from impact_assets._markdown import with_interval
from impact_assets.assessment import Assessment
from impact_assets.orchestration._common import (
    RESULTS_POOL,
    SNAPSHOT_REASON_TAG,
    AssetKeys,
    as_of,
    check_spec,
    dagster_failures,
    register_check_name,
)
from impact_assets.orchestration._markdown import register_markdown
from impact_assets.orchestration._oversight import oversight_metadata
from impact_assets.orchestration._resources import ResultsDatabase
from impact_assets.register import STATUSES


def report_asset(
    assessment: Assessment,
    keys: AssetKeys,
    partitions: dg.PartitionsDefinition,
    snapshot: dg.AssetKey,
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

        with dagster_failures(), impact_duckdb.get_connection() as conn:
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


def snapshot_asset(
    assessment: Assessment,
    keys: AssetKeys,
    partitions: dg.PartitionsDefinition,
    upstream: list[dg.AssetKey],
) -> dg.AssetsDefinition:
    entries = assessment.spec.register_entries
    thresholds = {
        e.id: (e.thresholds.warn, e.thresholds.breach, e.thresholds.direction) for e in entries
    }
    deciding = {e.id: e.thresholds.decide_on for e in entries}
    checks = [
        check_spec(
            register_check_name(e.id),
            asset=keys.result("impact_register_snapshot"),
            partitions=partitions,
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
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            snapshot, evaluated = pipeline.snapshot_register(
                conn,
                assessment,
                context.partition_key,
                context.run.run_id,
                reason=context.run.tags.get(SNAPSHOT_REASON_TAG),
                today=as_of(context),
            )
        counts = {status: sum(r.status == status for r in evaluated) for status in STATUSES}
        with impact_duckdb.get_connection() as conn:
            extra = oversight_metadata(conn, assessment.id)
            ((model_version,),) = conn.execute(
                "SELECT model_version FROM impact.register_snapshots WHERE snapshot_id = ?",
                [snapshot.snapshot_id],
            ).fetchall()
        spec_of = {e.id: e for e in entries}
        level = snapshot.impact_level
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
                description=f"{r.status}: {r.reason}",
                metadata={
                    "result": with_interval(r.value, r.ci_low, r.ci_high),
                    "status": r.status,
                    "owner": spec_of[r.entry_id].owner,
                    "action": spec_of[r.entry_id].action,
                    "model_version": model_version,
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
                    **(
                        {"basis": r.basis, "cohort": r.cohort_key or ""}
                        if r.basis is not None
                        else {}
                    ),
                    **({"matures_on": r.matures_on.isoformat()} if r.matures_on else {}),
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
