"""OpenLineage run events of one finished Dagster run, built from its event log.

A run of an assessment job gives, in the order they happened:

* the Dagster run itself as a job (START, then COMPLETE or FAIL), the parent of everything below;
* per asset step: START, then COMPLETE with the output's schema, column lineage, row count and (for
  the register snapshot and the release decision) the impact-assessment facet — or FAIL with the error;
* per asset step that evaluated asset checks: a run of the job ``<asset job>.checks`` whose inputs are
  the checked datasets with data-quality assertions and metrics, and whose test facet lists every check.

Every identity is derived from the event log, so building the events again gives the same events: run
ids are UUIDs named after the Dagster run and the step, event times are the log records' times. A
backend that deduplicates on (run id, event type, event time) sees each event once even after a retry.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib import metadata as package_metadata
from typing import Any
from zoneinfo import ZoneInfo

import attr
import dagster as dg
from dagster._core.events import DagsterEventType
from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
    storage_dataset,
    symlinks_dataset,
    test_run,
)

from impact_assets.lineage._catalog import AssetLineage, Dataset, LineageCatalog

__all__ = [
    "IMPACT_FACET_SCHEMA_URL",
    "PRODUCER",
    "ImpactAssessmentRunFacet",
    "column_lineage_facet",
    "run_events",
]

PRODUCER = "https://github.com/impact-assets/impact-assets"
#: ``$id`` of the impact-assessment facet's JSON schema (``schemas/ImpactAssessmentRunFacet.json``).
IMPACT_FACET_SCHEMA_URL = (
    "https://impact-assets.readthedocs.io/spec/facets/1-0-0/ImpactAssessmentRunFacet.json"
    "#/$defs/ImpactAssessmentRunFacet"
)
_RUN_IDS = uuid.UUID("9b0c4f7e-3c1a-4b8e-9d35-6f1f0c2a7e11")
_STEP_TYPES = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
}
_RUN_END = {
    DagsterEventType.RUN_SUCCESS: RunState.COMPLETE,
    DagsterEventType.RUN_FAILURE: RunState.FAIL,
    DagsterEventType.RUN_CANCELED: RunState.ABORT,
}


@attr.define(kw_only=True)
class ImpactAssessmentRunFacet(RunFacet):
    """The impact register after this run (schema shipped in ``impact_assets/lineage/schemas``)."""

    assessmentId: str
    partition: str
    modelVersion: str | None = attr.field(default=None)
    snapshotId: str | None = attr.field(default=None)
    statusCounts: dict[str, int] | None = attr.field(default=None)
    breaches: list[dict[str, Any]] | None = attr.field(default=None)
    impactLevel: str | None = attr.field(default=None)
    openActions: int | None = attr.field(default=None)
    releaseDecision: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return IMPACT_FACET_SCHEMA_URL


def _time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="microseconds")


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def _version() -> str:
    try:
        return package_metadata.version("impact-assets")
    except package_metadata.PackageNotFoundError:
        return "0+unknown"


class _RunTranslator:
    def __init__(self, catalog: LineageCatalog, run: dg.DagsterRun) -> None:
        self.catalog = catalog
        self.run = run
        self.partition = run.tags.get("dagster/partition")
        self.parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.run_id),
            job=parent_run.Job(namespace=catalog.namespace, name=run.job_name),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=run.run_id),
                job=parent_run.RootJob(namespace=catalog.namespace, name=run.job_name),
            ),
        )
        self.engine = processing_engine_run.ProcessingEngineRunFacet(
            version=dg.__version__, name="Dagster", openlineageAdapterVersion=_version()
        )

    def run_id(self, *parts: str) -> str:
        return str(uuid.uuid5(_RUN_IDS, "/".join((self.run.run_id, *parts))))

    def nominal(self, asset: AssetLineage | None) -> dict[str, RunFacet]:
        if not self.partition:
            return {}
        zone = asset.assessment.spec.partitions.timezone if asset else "UTC"
        start = dt.datetime.combine(
            dt.date.fromisoformat(self.partition), dt.time(), ZoneInfo(zone)
        )
        return {
            "nominalTime": nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=start.isoformat(),
                nominalEndTime=(start + dt.timedelta(days=1)).isoformat(),
            )
        }

    def job(self, name: str, asset: AssetLineage | None, job_type: str) -> Job:
        facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="DAGSTER", jobType=job_type
            )
        }
        if asset is not None:
            spec = asset.assessment.spec
            facets["ownership"] = ownership_job.OwnershipJobFacet(
                owners=[
                    ownership_job.Owner(name=o if ":" in o else f"user:{o}", type="MAINTAINER")
                    for o in spec.owners
                ]
            )
            facets["documentation"] = documentation_job.DocumentationJobFacet(
                description=f"{asset.description}\n\nIntended use of the model: {spec.intended_use.strip()}",
                contentType="text/markdown",
            )
            if asset.sql and job_type == "ASSET":
                facets["sql"] = sql_job.SQLJobFacet(query=asset.sql, dialect="duckdb")
        return Job(namespace=self.catalog.namespace, name=name, facets=facets)

    def event(
        self,
        state: RunState,
        timestamp: float,
        run_id: str,
        job: Job,
        run_facets: dict[str, RunFacet],
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
    ) -> RunEvent:
        return RunEvent(
            eventType=state,
            eventTime=_time(timestamp),
            run=Run(runId=run_id, facets=run_facets),
            job=job,
            producer=PRODUCER,
            inputs=inputs or [],
            outputs=outputs or [],
        )


def _dataset_facets(dataset: Dataset) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if dataset.description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
            description=dataset.description
        )
    if dataset.kind == "files":
        facets["storage"] = storage_dataset.StorageDatasetFacet(
            storageLayer="file", fileFormat=dataset.file_format
        )
    if dataset.table:
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(
                    namespace=dataset.namespace, name=dataset.table, type="TABLE"
                )
            ]
        )
    return facets


def column_lineage_facet(
    lineage: dict[str, list[tuple[Dataset, str]]],
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each output column's input columns (from the SQL model's sqlglot lineage), all DIRECT."""
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            column: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=d.namespace,
                        name=d.name,
                        field=name,
                        transformations=[column_lineage_dataset.Transformation(type="DIRECT")],
                    )
                    for d, name in deps
                ]
            )
            for column, deps in sorted(lineage.items())
        }
    )


def _output_facets(
    asset: AssetLineage, materialization: dg.AssetMaterialization | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dataset facets and output facets (row count) of an asset's written dataset."""
    facets: dict[str, Any] = {}
    statistics = None
    meta = dict(materialization.metadata) if materialization else {}
    schema = _value(meta.get("dagster/column_schema"))
    if isinstance(schema, dg.TableSchema):
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type)
                for c in schema.columns
            ]
        )
    if asset.column_lineage:
        facets["columnLineage"] = column_lineage_facet(asset.column_lineage)
    rows = _value(meta.get("dagster/partition_row_count", meta.get("dagster/row_count")))
    if isinstance(rows, int):
        statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=rows
        )
    version = _value(meta.get("impact_assets/model_version"))
    if asset.outputs[0].kind == "model" and version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(version)
        )
    return facets, ({"outputStatistics": statistics} if statistics else {})


def _impact_facet(
    asset: AssetLineage,
    partition: str,
    materialization: dg.AssetMaterialization | None,
    checks: list[Any],
) -> ImpactAssessmentRunFacet | None:
    name = asset.key.path[-1]
    if materialization is None or name not in ("impact_register_snapshot", "release_decision"):
        return None
    meta = {k: _value(v) for k, v in materialization.metadata.items()}
    facet = ImpactAssessmentRunFacet(assessmentId=asset.assessment.id, partition=partition)
    facet.modelVersion = meta.get("impact_assets/model_version") or None
    if name == "release_decision":
        facet.releaseDecision = meta.get("impact_assets/decision")
        return facet
    facet.snapshotId = meta.get("impact_assets/snapshot_id")
    facet.statusCounts = {
        k.removeprefix("impact_assets/status/"): int(v)
        for k, v in meta.items()
        if k.startswith("impact_assets/status/")
    }
    facet.impactLevel = meta.get("impact_assets/impact_level")
    facet.openActions = meta.get("impact_assets/open_actions")
    facet.breaches = []
    for check in checks:
        values = {k: _value(v) for k, v in check.metadata.items()}
        if values.get("status") == "breach":
            facet.breaches.append(
                {
                    "entryId": check.check_name,
                    "value": values.get("value"),
                    "thresholdBreach": values.get("threshold_breach"),
                    "reason": values.get("reason") or "",
                }
            )
    return facet


def _check_assertion(
    check: Any,
) -> tuple[data_quality_assertions_dataset.Assertion, test_run.TestExecution]:
    values = {k: _value(v) for k, v in check.metadata.items()}
    kwargs = json.loads(values["kwargs"]) if isinstance(values.get("kwargs"), str) else {}
    severity = "error" if check.severity == dg.AssetCheckSeverity.ERROR else "warn"
    kind = str(values.get("expectation") or "impact_register_threshold")
    expected = {k: v for k, v in kwargs.items() if k != "column"} or {
        k: values[k]
        for k in ("threshold_warn", "threshold_breach", "direction")
        if values.get(k) is not None
    }
    actual = values.get("observed_value", values.get("value"))
    if values.get("unexpected_count") is not None:
        actual = f"{values['unexpected_count']} unexpected ({values.get('unexpected_percent')} %)"
    common = {
        "name": check.check_name,
        "severity": severity,
        "expected": json.dumps(expected, sort_keys=True, default=str) if expected else None,
        "actual": None if actual is None else str(actual),
    }
    return (
        data_quality_assertions_dataset.Assertion(
            assertion=kind, success=bool(check.passed), column=kwargs.get("column"), **common
        ),
        test_run.TestExecution(status="pass" if check.passed else "fail", type=kind, **common),
    )


def run_events(
    instance: dg.DagsterInstance, run_id: str, catalog: LineageCatalog
) -> list[RunEvent]:
    """The OpenLineage events of a finished run, in order; empty when it touched none of the catalog's assets."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    records = instance.get_records_for_run(run_id, limit=None).records
    steps: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or event.event_type not in _STEP_TYPES or entry.step_key is None:
            continue
        asset = catalog.for_step(entry.step_key)
        if asset is None:
            continue
        step = steps.setdefault(
            entry.step_key, {"asset": asset, "start": None, "end": None, "checks": [], "mat": None}
        )
        if event.event_type == DagsterEventType.STEP_START:
            step["start"] = entry.timestamp
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            step["mat"] = event.event_specific_data.materialization
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            step["checks"].append((entry.timestamp, event.event_specific_data))
        else:
            step["end"] = (entry.timestamp, event)
    if not steps:
        return []
    t = _RunTranslator(catalog, run)
    first = next(iter(steps.values()))["asset"]
    run_start = next(
        (
            r.event_log_entry.timestamp
            for r in records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.event_type == DagsterEventType.RUN_START
        ),
        records[0].event_log_entry.timestamp,
    )
    run_end = next(
        (
            (r.event_log_entry.timestamp, _RUN_END[r.event_log_entry.dagster_event.event_type])
            for r in reversed(records)
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.event_type in _RUN_END
        ),
        None,
    )
    parent_job = t.job(run.job_name, None, "JOB")
    parent_facets = {**t.nominal(first), "processing_engine": t.engine}
    events = [t.event(RunState.START, run_start, run.run_id, parent_job, parent_facets)]
    for step_key, step in steps.items():
        if step["start"] is None:
            continue
        asset: AssetLineage = step["asset"]
        step_run = t.run_id(step_key)
        facets = {**t.nominal(asset), "parent": t.parent, "processing_engine": t.engine}
        job = t.job(asset.job_name, asset, "ASSET")
        inputs = [
            InputDataset(namespace=d.namespace, name=d.name, facets=_dataset_facets(d))
            for d in asset.inputs
        ]
        outputs = [
            OutputDataset(namespace=d.namespace, name=d.name, facets=_dataset_facets(d))
            for d in asset.outputs
        ]
        events.append(
            t.event(RunState.START, step["start"], step_run, job, facets, inputs, outputs)
        )
        if step["end"] is None:
            continue
        end_time, end = step["end"]
        checks = [c for _, c in step["checks"]]
        if end.event_type == DagsterEventType.STEP_FAILURE:
            error = end.event_specific_data.error
            failed = {
                **facets,
                "errorMessage": error_message_run.ErrorMessageRunFacet(
                    message=error.message.strip() if error else "step failed",
                    programmingLanguage="python",
                    stackTrace="".join(error.stack) if error else None,
                ),
            }
            events.append(t.event(RunState.FAIL, end_time, step_run, job, failed, inputs, outputs))
        else:
            done = dict(facets)
            impact = _impact_facet(asset, t.partition or "", step["mat"], checks)
            if impact is not None:
                done["impactAssessment"] = impact
            written_facets, statistics = _output_facets(asset, step["mat"])
            written = [
                OutputDataset(
                    namespace=d.namespace,
                    name=d.name,
                    facets={**_dataset_facets(d), **written_facets},
                    outputFacets=statistics,
                )
                for d in asset.outputs
            ]
            events.append(
                t.event(RunState.COMPLETE, end_time, step_run, job, done, inputs, written)
            )
        if checks:
            events += _check_events(t, asset, step_key, step["checks"], step_run)
    if run_end is not None:
        events.append(t.event(run_end[1], run_end[0], run.run_id, parent_job, parent_facets))
    return events


def _check_events(
    t: _RunTranslator,
    asset: AssetLineage,
    step_key: str,
    timed_checks: list[tuple[float, Any]],
    step_run: str,
) -> list[RunEvent]:
    by_dataset: dict[Dataset, list[Any]] = {}
    for _, check in timed_checks:
        dataset = t.catalog.dataset_of(check.asset_key) or asset.outputs[0]
        source = check.check_name.split("__", 1)[0] if "__" in check.check_name else None
        if source and source in asset.assessment.spec.sources:
            dataset = t.catalog.dataset_of(dg.AssetKey([asset.assessment.id, source])) or dataset
        by_dataset.setdefault(dataset, []).append(check)
    tests: list[test_run.TestExecution] = []
    inputs = []
    for dataset, checks in by_dataset.items():
        assertions = []
        nulls: dict[str, int] = {}
        rows = None
        for check in checks:
            assertion, execution = _check_assertion(check)
            assertions.append(assertion)
            tests.append(execution)
            values = {k: _value(v) for k, v in check.metadata.items()}
            if values.get("element_count") is not None:
                rows = int(values["element_count"])
            if (
                values.get("expectation") == "expect_column_values_to_not_be_null"
                and values.get("unexpected_count") is not None
                and assertion.column
            ):
                nulls[assertion.column] = int(values["unexpected_count"])
        inputs.append(
            InputDataset(
                namespace=dataset.namespace,
                name=dataset.name,
                facets=_dataset_facets(dataset),
                inputFacets={
                    "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=assertions
                    ),
                    "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                        rowCount=rows,
                        columnMetrics={
                            c: data_quality_metrics_input_dataset.ColumnMetrics(nullCount=n)
                            for c, n in nulls.items()
                        },
                    ),
                },
            )
        )
    job = t.job(f"{asset.job_name}.checks", asset, "ASSET_CHECK")
    facets = {
        **t.nominal(asset),
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=step_run),
            job=parent_run.Job(namespace=t.catalog.namespace, name=asset.job_name),
            root=t.parent.root,
        ),
        "processing_engine": t.engine,
    }
    run_id = t.run_id(step_key, "checks")
    started, ended = timed_checks[0][0], timed_checks[-1][0]
    done = {**facets, "test": test_run.TestRunFacet(tests=tests)}
    return [
        t.event(RunState.START, started, run_id, job, facets, inputs),
        t.event(RunState.COMPLETE, ended, run_id, job, done, inputs),
    ]
