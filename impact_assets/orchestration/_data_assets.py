"""Assets of the data: the raw sources (external assets with freshness policies), one asset per SQL
model with its column lineage, and the model's predictions.
"""

import datetime
import hashlib

import dagster as dg
import duckdb

from impact_assets import pipeline, quality
from impact_assets.assessment import Assessment
from impact_assets.errors import DataContractError, SqlModelError
from impact_assets.modeling import PREDICTIONS_TABLE
from impact_assets.orchestration._checks import (
    quality_check_results,
    quality_check_specs,
    quality_tables,
)
from impact_assets.orchestration._common import (
    DATA_VERSION_TAG,
    RESULTS_POOL,
    AssetKeys,
    dagster_failures,
)
from impact_assets.orchestration._resources import ResultsDatabase


def _column_lineage(assessment: Assessment, keys: AssetKeys, name: str) -> dict[str, object]:
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


def _freshness(assessment: Assessment) -> dg.FreshnessPolicy | None:
    fresh = assessment.spec.quality.freshness
    if fresh is None:
        return None
    return dg.FreshnessPolicy.cron(
        deadline_cron=fresh.deadline_cron,
        lower_bound_delta=datetime.timedelta(hours=fresh.lower_bound_hours),
        timezone=assessment.spec.partitions.timezone,
    )


def source_specs(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
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


def sql_asset(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition, name: str
) -> dg.AssetsDefinition:
    model = assessment.sql.models[name]
    sources_read = sorted(t for t in model.reads if t in assessment.spec.sources)
    tables = quality_tables(assessment, name)
    check_specs = quality_check_specs(assessment, keys.table(name), tables, partitions)

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
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            unreadable = pipeline.prepare(conn, assessment)
            bad_files = pipeline.unreadable_files(unreadable, sources_read, context.partition_key)
            if bad_files:
                source, bad = bad_files[0]
                raise DataContractError(
                    pipeline.record_unreadable_partition(
                        conn,
                        assessment,
                        context.partition_key,
                        context.run.run_id,
                        table=source,
                        problem=pipeline.UNREADABLE_FILE.format(source=source, file=bad.path),
                        duckdb_message=bad.message,
                        remedy=pipeline.FIX_THE_FILE.format(file=bad.path),
                    ),
                    context={"source": source, "file": bad.path},
                )
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
            try:
                written = pipeline.run_sql_model(conn, assessment, name, context.partition_key)
            except SqlModelError as exc:
                if not isinstance(exc.__cause__, duckdb.DataError):
                    raise  # not the day's data: the model itself is wrong
                raise DataContractError(
                    pipeline.record_unreadable_partition(
                        conn,
                        assessment,
                        context.partition_key,
                        context.run.run_id,
                        table=name,
                        problem=f"SQL model {name!r} fails on the day's data",
                        duckdb_message="\n".join(
                            line
                            for line in str(exc.context.get("duckdb", exc.message)).splitlines()[:4]
                            if line.strip()
                        ),
                        remedy=pipeline.FIX_THE_DATA.format(model=model.path),
                    ),
                    context={"model": str(model.path), "line": exc.context.get("line")},
                ) from exc
            check_results = quality_check_results(
                assessment, conn, tables, context.partition_key, context.run.run_id
            )
            # read and converted (after the checks, which replace this run's results of the tables)
            for table in [*sources_read, name]:
                pipeline.record_readable(
                    conn, assessment, context.partition_key, context.run.run_id, table
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


def predictions_asset(
    assessment: Assessment, keys: AssetKeys, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    scoring = assessment.spec.model.registry
    assert scoring is not None
    check_specs = quality_check_specs(
        assessment, keys.table(PREDICTIONS_TABLE), [PREDICTIONS_TABLE], partitions
    )

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
        with dagster_failures(), impact_duckdb.get_connection() as conn:
            pipeline.prepare(conn, assessment, sources=False)
            scored = pipeline.score(conn, assessment, context.partition_key)
            check_results = quality_check_results(
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
