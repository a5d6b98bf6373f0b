"""OpenLineage: schema-valid events from the event log, delivered once and in order, kept while the backend is down."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import referencing
import yaml
from click.testing import CliRunner

from impact_assets import (
    ProjectPaths,
    assessment_job_name,
    build_definitions,
    discover_assessments,
    release_job_name,
)
from impact_assets.cli import main
from impact_assets.lineage import (
    Dataset,
    LineageCatalog,
    column_lineage_facet,
    deliver_pending,
    pending_lineage,
    run_events,
)
from impact_assets.sql import SqlProject, discover_models

from ._servers import Backend
from .conftest import DAYS, REPO, VENDOR_ROWS, assess, run_partition, vendor_project

SPEC_DIR = Path(os.environ.get("OPENLINEAGE_SPEC_DIR", Path(__file__).parent / "openlineage_spec"))
CASES = sorted((Path(__file__).parent / "sql_cases").glob("*.yaml"))


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The backend configured the standard way (an ``openlineage.yml`` named by OPENLINEAGE_CONFIG)."""
    server = Backend()
    config = tmp_path / "openlineage.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "transport": {
                    "type": "http",
                    "url": f"http://127.0.0.1:{server.port}",
                    "timeout": 2,
                    "retry": {"total": 1, "connect": 1, "backoff_factor": 0.1},
                }
            }
        )
    )
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    yield server
    server.stop()


def _assess(paths: ProjectPaths, instance: dg.DagsterInstance, days, *, release: bool = False):
    defs = build_definitions(paths)
    for day in days:
        assess(paths, instance, [day])
        if release:
            assert (
                defs.resolve_job_def(release_job_name("credit_scoring"))
                .execute_in_process(partition_key=day.isoformat(), instance=instance)
                .success
            )
    return LineageCatalog(discover_assessments(paths), defs.resolve_asset_graph())


def _identity(event: dict) -> tuple:
    return (event["run"]["runId"], event["eventType"], event["eventTime"])


def _validator():
    files = [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json"))]
    own = resources.files("impact_assets.lineage").joinpath("schemas/ImpactAssessmentRunFacet.json")
    schemas = [json.loads(f.read_text()) for f in files] + [json.loads(own.read_text())]
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas
    )

    def validate(instance: dict, url: str) -> None:
        base, _, pointer = url.partition("#")
        schema = {"$ref": url} if pointer else {"$ref": base}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)

    return validate


def _facets(event: dict) -> Iterator[tuple[str, dict]]:
    for name, facet in event["run"].get("facets", {}).items():
        yield name, facet
    for name, facet in event["job"].get("facets", {}).items():
        yield name, facet
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for group in ("facets", "inputFacets", "outputFacets"):
            for name, facet in dataset.get(group, {}).items():
                yield name, facet


def test_every_event_is_schema_valid_and_carries_the_facets(demo_paths: ProjectPaths):
    with dg.instance_for_test() as instance:
        catalog = _assess(demo_paths, instance, DAYS[:1], release=True)
        report = deliver_pending(instance, catalog, demo_paths.state_dir)
    assert report.error is None and not report.rejected and report.pending_events == 0
    lines = (demo_paths.state_dir / "lineage" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == report.delivered > 0

    validate = _validator()
    for event in events:
        validate(event, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
        for _, facet in _facets(event):
            validate(facet, facet["_schemaURL"])

    by_job: dict[str, list[dict]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event)
    for job in (
        "credit_scoring.staging.stg_applications",
        "credit_scoring.predictions",
        "credit_scoring.group_metrics",
        "credit_scoring.impact_register_snapshot",
        "credit_scoring.release_decision",
        "credit_scoring__assessment",
    ):
        assert [e["eventType"] for e in by_job[job]] == ["START", "COMPLETE"], job
    stg = by_job["credit_scoring.staging.stg_applications"][1]
    assert stg["job"]["facets"]["sql"]["query"].startswith("-- One row per loan application")
    assert stg["job"]["facets"]["ownership"]["owners"] == [
        {"name": "user:risk-analytics@lender.example", "type": "MAINTAINER"}
    ]
    assert stg["run"]["facets"]["parent"]["job"]["name"] == "credit_scoring__assessment"
    assert stg["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-03-02T00:00:00+00:00"
    (source,) = stg["inputs"]
    assert (source["namespace"], source["name"]) == (
        "file",
        (demo_paths.state_dir / "landing" / "credit_scoring" / "applications").resolve().as_posix(),
    )
    (table,) = stg["outputs"]
    assert table["namespace"] == f"duckdb://{socket.gethostname()}{demo_paths.database.resolve()}"
    assert table["name"] == "impact_assets.credit_scoring.stg_applications"
    fields = table["facets"]["columnLineage"]["fields"]
    assert [f["field"] for f in fields["sex"]["inputFields"]] == ["personal_status_and_sex"]
    assert {f["name"] for f in table["facets"]["schema"]["fields"]} >= {"sex", "age_band", "repaid"}
    assert table["outputFacets"]["outputStatistics"]["rowCount"] > 0

    checks = by_job["credit_scoring.staging.stg_applications.checks"][1]
    tests = {t["name"]: t for t in checks["run"]["facets"]["test"]["tests"]}
    assert tests["raw_applications__batch_is_fresh"]["status"] == "pass"
    checked = {d["name"].rsplit("/", 1)[-1].rsplit(".", 1)[-1]: d for d in checks["inputs"]}
    assertions = checked["applications"]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"] for a in assertions} == {
        "raw_applications__creditability_values_are_in_set",
        "raw_applications__batch_is_fresh",
    }

    snapshot = by_job["credit_scoring.impact_register_snapshot"][1]["run"]["facets"]
    impact = snapshot["impactAssessment"]
    assert impact["assessmentId"] == "credit_scoring" and impact["partition"] == "2026-03-02"
    assert sum(impact["statusCounts"].values()) == len(
        discover_assessments(demo_paths)[0].spec.register_entries
    )
    assert impact["impactLevel"] in {"I", "II", "III", "IV"}
    decision = by_job["credit_scoring.release_decision"][1]["run"]["facets"]["impactAssessment"]
    assert decision["releaseDecision"] in {"approve", "hold", "rollback"}


def test_backend_down_for_two_runs_loses_nothing_and_duplicates_nothing(
    demo_paths: ProjectPaths, backend: Backend
):
    with dg.instance_for_test() as instance:
        catalog = _assess(demo_paths, instance, DAYS)
        per_run = {
            run.run_id: [
                (e.run.runId, e.eventType.value, e.eventTime)
                for e in run_events(instance, run.run_id, catalog)
            ]
            for run in instance.get_runs()
        }
        expected = [i for events in per_run.values() for i in events]
        for _ in range(2):  # down: every attempt keeps everything
            report = deliver_pending(instance, catalog, demo_paths.state_dir)
            assert report.error is not None and report.delivered == 0
            assert (report.pending_events, report.pending_runs) == (len(expected), 2)
        backend.start()
        report = deliver_pending(instance, catalog, demo_paths.state_dir)
        assert report.error is None and report.delivered == len(expected)
        again = deliver_pending(instance, catalog, demo_paths.state_dir)
        assert again.delivered == 0 and again.pending_events == 0
    identities = [_identity(e) for e in backend.received]
    assert len(identities) == len(set(identities)) == len(expected)
    for events in per_run.values():  # in order per run: as the run produced them
        assert [i for i in identities if i in set(events)] == events


def test_a_rejected_event_is_reported_and_not_retried(demo_paths: ProjectPaths, backend: Backend):
    backend.refuse = lambda event: event["job"]["name"] == "credit_scoring.disparities"
    backend.start()
    with dg.instance_for_test() as instance:
        catalog = _assess(demo_paths, instance, DAYS[:1])
        report = deliver_pending(instance, catalog, demo_paths.state_dir)
        assert report.error is None and len(report.rejected) == 2  # START and COMPLETE
        assert report.rejected[0].startswith("HTTP 400")
        accepted = len(backend.received)
        assert deliver_pending(instance, catalog, demo_paths.state_dir).delivered == 0
        status = pending_lineage(instance, catalog, demo_paths.state_dir)
    assert len(backend.received) == accepted
    assert status.pending_events == 0 and len(status.rejected) == 2
    rejected = (demo_paths.state_dir / "lineage" / "rejected.jsonl").read_text().splitlines()
    assert {json.loads(r)["event"]["job"]["name"] for r in rejected} == {
        "credit_scoring.disparities"
    }


@pytest.mark.parametrize("case_file", CASES, ids=[p.stem for p in CASES])
def test_column_lineage_facet_matches_the_sql(case_file: Path, tmp_path: Path):
    case = yaml.safe_load(case_file.read_text())
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "model.sql").write_text(case["query"])
    (model,) = discover_models(tmp_path, ["marts/model.sql"])
    project = SqlProject(
        [model], external={t: {c: "UNKNOWN" for c in rows[0]} for t, rows in case["inputs"].items()}
    )
    datasets = {t: Dataset("duckdb://host/db.duckdb", f"db.s.{t}", "table") for t in case["inputs"]}
    facet = column_lineage_facet(
        {
            column: [(datasets[d.table], d.column) for d in deps]
            for column, deps in project.column_lineage["model"].items()
        }
    )
    edges = {
        column: sorted(f"{f.name.rsplit('.', 1)[-1]}.{f.field}" for f in fields.inputFields)
        for column, fields in facet.fields.items()
    }
    assert edges == {c: sorted(v) for c, v in case["expected_lineage"].items()}


def test_a_failed_step_and_run_give_fail_events(project: ProjectPaths):
    vendor_project(
        project, "id,day,region,outcome,score\n1,2026-03-02,north,1,0.9\n"
    )  # no loaded_at
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        assert (
            not defs.resolve_job_def(assessment_job_name("vendor_scores"))
            .execute_in_process(partition_key="2026-03-02", instance=instance, raise_on_error=False)
            .success
        )
        catalog = LineageCatalog(discover_assessments(project), defs.resolve_asset_graph())
        assert deliver_pending(instance, catalog, project.state_dir).delivered > 0
    events = [
        json.loads(line)
        for line in (project.state_dir / "lineage" / "events.jsonl").read_text().splitlines()
    ]
    ends = {e["job"]["name"]: e for e in events if e["eventType"] != "START"}
    failed = ends["vendor_scores.vendor.vendor_decisions"]
    assert failed["eventType"] == "FAIL"
    error = failed["run"]["facets"]["errorMessage"]
    assert "name columns it does not have: ['loaded_at']" in error["message"]
    assert error["programmingLanguage"] == "python" and error["stackTrace"]
    assert ends["vendor_scores__assessment"]["eventType"] == "FAIL"


def test_the_command_line_reports_pending_lineage(
    demo_paths: ProjectPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("IMPACT_ASSETS_HOME", str(demo_paths.state_dir))
    monkeypatch.setenv("IMPACT_ASSETS_ASSESSMENTS_DIR", str(demo_paths.assessments_dir))
    with dg.DagsterInstance.get() as instance:
        _assess(demo_paths, instance, DAYS[:1])
    runner = CliRunner()
    status = runner.invoke(main, ["--project-dir", str(REPO), "lineage", "--status"])
    assert status.exit_code == 1, status.output
    assert "pending: " in status.output and " events in 1 runs" in status.output


def test_a_model_whose_column_lineage_cannot_be_resolved_keeps_its_table_lineage(
    project: ProjectPaths,
):
    # `score` is both a source column and an output alias that the CASE reads: without the source's
    # schema sqlglot cannot tell which, so the model's column lineage is unknown
    sql = (
        "SELECT id, CAST(day AS DATE) AS day, region, outcome, CAST(score AS DOUBLE) AS score, "
        "CASE WHEN score >= 0.5 THEN 1 ELSE 0 END AS decision FROM vendor_file\n"
    )
    vendor_project(project, VENDOR_ROWS, sql=sql)
    (assessment,) = discover_assessments(project)
    assert assessment.sql.column_lineage["vendor_decisions"] is None
    catalog = LineageCatalog([assessment], build_definitions(project).resolve_asset_graph())
    model = catalog.assets[dg.AssetKey(["vendor_scores", "vendor", "vendor_decisions"])]
    assert model.column_lineage == {}
    assert [d.name for d in model.inputs] == [str(project.project_dir / "data" / "vendor.csv")]


def test_a_new_dagster_instance_gets_its_own_lineage_cursor(project: ProjectPaths):
    # the same state folder, first with one instance, then with another (as when moving to PostgreSQL):
    # the second instance's event log starts again at low storage ids, which must not count as delivered
    paths = vendor_project(project, VENDOR_ROWS)
    delivered = []
    for day in ("2026-03-02", "2026-03-03"):
        with dg.instance_for_test() as instance:
            assert run_partition(paths, instance, day).success
            catalog = LineageCatalog(
                discover_assessments(paths), build_definitions(paths).resolve_asset_graph()
            )
            report = deliver_pending(instance, catalog, paths.state_dir)
            expected = len(run_events(instance, instance.get_runs()[0].run_id, catalog))
            assert report.error is None and report.delivered == expected > 0
            assert deliver_pending(instance, catalog, paths.state_dir).delivered == 0
            delivered.append(report.delivered)
    events = (paths.state_dir / "lineage" / "events.jsonl").read_text().splitlines()
    assert len(events) == sum(delivered)
