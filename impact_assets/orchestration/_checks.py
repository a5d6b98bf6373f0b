"""Data-quality expectations as asset checks: their specs on the asset that writes the checked table,
and their results from the step's evaluation.
"""

import dagster as dg
import duckdb

from impact_assets import pipeline
from impact_assets.assessment import Assessment
from impact_assets.orchestration._common import check_spec
from impact_assets.quality import QualityCheck, assessment_checks


def quality_tables(assessment: Assessment, name: str) -> list[str]:
    """Tables whose expectations run in the step of asset ``name``: itself, and sources it is first to read."""
    tables = [name]
    for source in assessment.spec.sources:
        readers = [m for m in assessment.sql.order if source in assessment.sql.models[m].reads]
        if readers and readers[0] == name:
            tables.append(source)
    return tables


def _check_spec_name(assessment: Assessment, table: str, check: QualityCheck) -> str:
    return f"{table}__{check.name}" if table in assessment.spec.sources else check.name


def quality_check_specs(
    assessment: Assessment,
    key: dg.AssetKey,
    tables: list[str],
    partitions: dg.PartitionsDefinition,
) -> list[dg.AssetCheckSpec]:
    """The checks of ``tables`` on the asset ``key``, one result per partition."""
    checks = assessment_checks(assessment.spec)
    return [
        check_spec(
            _check_spec_name(assessment, c.table, c),
            asset=key,
            partitions=partitions,
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


def quality_check_results(
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
