"""Shared fixtures: a project whose state (DuckDB file, registry, landing batches) lives in tmp."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.defs_state.base import set_defs_state_storage

from impact_assets import (
    ProjectPaths,
    assessment_job_name,
    build_definitions,
    discover_assessments,
)
from impact_assets.cli import simulate_days, train_version

REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "assessments" / "credit_scoring.yaml"
DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]


#: Files of tests that start a JVM or other processes go to the workers first: each holds its
#: worker for minutes, and one started last would leave the other workers idle at the end.
FIRST = ("spark", "postgres", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, mark in enumerate(FIRST) if item.get_closest_marker(mark)), len(FIRST)
        )

    first: dict[str, int] = {}
    for item in items:
        first[item.path.name] = min(first.get(item.path.name, len(FIRST)), rank(item))
    items.sort(key=lambda item: first[item.path.name])  # stable: a file's tests keep their order


@pytest.fixture(autouse=True)
def _no_defs_state_storage_left_over() -> Iterator[None]:
    """Each test starts with no current Dagster defs-state storage.

    Entering a ``DagsterInstance`` makes its storage the current one until the instance exits, and
    loading definitions reads it. A storage left current by an earlier test on the worker would point
    at an instance already disposed ("Attempted to resolve undefined DagsterInstance weakref").
    """
    with set_defs_state_storage(None):
        yield


def assess(
    paths: ProjectPaths,
    instance: dg.DagsterInstance,
    days: Iterable[dt.date | str],
    assessment_id: str = "credit_scoring",
) -> list[dg.ExecuteInProcessResult]:
    """Run the assessment job of ``assessment_id`` on each day; every run must succeed."""
    job = build_definitions(paths).resolve_job_def(assessment_job_name(assessment_id))
    results = [job.execute_in_process(partition_key=str(day), instance=instance) for day in days]
    assert [r.success for r in results] == [True] * len(results)
    return results


def run_partition(
    paths: ProjectPaths,
    instance: dg.DagsterInstance,
    day: str,
    assessment_id: str = "vendor_scores",
    **resource_config: object,
) -> dg.ExecuteInProcessResult:
    """One run of the assessment job of ``assessment_id`` on ``day``, which may fail.

    ``resource_config`` overrides the results database's configuration (``lock_timeout=1.0``).
    """
    resources = (
        {"impact_duckdb": {"config": {"database": str(paths.database), **resource_config}}}
        if resource_config
        else {}
    )
    return (
        build_definitions(paths)
        .resolve_job_def(assessment_job_name(assessment_id))
        .execute_in_process(
            partition_key=day,
            instance=instance,
            raise_on_error=False,
            run_config={"resources": resources},
        )
    )


def step_failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    """The run's one failed step."""
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure


def alone(spec: Path | dict, state_dir: Path, name: str = DEMO_SPEC.name) -> ProjectPaths:
    """The repo's SQL with one assessment: ``spec`` (a file, or its data) in a folder beside ``state_dir``."""
    folder = state_dir.parent / f"{state_dir.name}-assessments"
    folder.mkdir(exist_ok=True)
    if isinstance(spec, Path):
        shutil.copy(spec, folder / name)
    else:
        (folder / name).write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return ProjectPaths(
        project_dir=REPO, assessments_dir=folder, sql_dir=REPO / "dbt_like_sql", state_dir=state_dir
    )


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """The credit-scoring demo, with two simulated days and a trained model in a tmp state dir."""
    paths = alone(DEMO_SPEC, tmp_path_factory.mktemp("state"))
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, DAYS)
    train_version(assessment)
    return paths


def same_day_outcomes(data: dict) -> dict:
    """The demo spec's data with each day's outcomes in its own batch (no late outcomes), in place."""
    data.pop("outcomes")
    data["sources"].pop("raw_outcomes")
    data["simulation"].pop("outcomes")
    for entry in data["register"]:
        entry.pop("warn_on_estimate", None)
        if entry["id"] == "outcomes_recorded":
            entry["measure"] = {
                "source": "quality",
                "table": "scored_applications",
                "check": "repaid_values_are_not_null",
                "metric": "unexpected_percent",
            }
            entry["thresholds"] = {"direction": "lower_is_better", "warn": 0.5, "breach": 2}
    return data


@pytest.fixture(scope="session")
def same_day_state(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """The demo as :func:`demo_state`, with each day's outcomes known that day."""
    data = same_day_outcomes(yaml.safe_load(DEMO_SPEC.read_text()))
    paths = alone(data, tmp_path_factory.mktemp("same-day"))
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, DAYS)
    train_version(assessment)
    return paths


@pytest.fixture
def demo_paths(demo_state: ProjectPaths, tmp_path: Path) -> ProjectPaths:
    """A private copy of the demo state, so a test can write to it freely."""
    state = tmp_path / "state"
    shutil.copytree(demo_state.state_dir, state)
    return alone(DEMO_SPEC, state)


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    """An empty project folder with assessments/ and dbt_like_sql/ to fill in."""
    (tmp_path / "assessments").mkdir()
    (tmp_path / "dbt_like_sql").mkdir()
    return ProjectPaths.for_project(tmp_path)


VENDOR_SPEC = """
id: vendor_scores
title: Scores bought from a vendor
intended_use: Decide which applications are reviewed first.
limitations: [Vendor model, no access to its features.]
owners: [risk@lender.example]
stakeholders: [{id: applicants, description: People who apply.}]
model: {name: vendor_model, positive_label: 1}
sources:
  vendor_file: {path: "data/vendor.csv", format: csv, partition_column: day, loaded_at_column: loaded_at}
sql: {paths: ["vendor/*.sql"]}
partitions: {start_date: "2026-03-01"}
bindings:
  scored_table: vendor_decisions
  id_column: id
  partition_column: day
  label: outcome
  prediction: decision
  score: score
  sensitive_features: [{name: region, values: [north, south]}]
  min_group_size: 2
fairness: {bootstrap: {resamples: 200}}
register:
  - id: region_parity
    outcome: Both regions are reviewed at comparable rates.
    stakeholder: applicants
    impact: harm
    measure: {source: disparity, metric: demographic_parity, feature_set: region, method: ratio}
    thresholds: {direction: higher_is_better, warn: 0.9, breach: 0.8}
    owner: risk@lender.example
"""


VENDOR_ROWS = (  # each day's batch is loaded at 01:00 the next day (default freshness: after 03:00 the same day)
    "id,day,region,outcome,score,loaded_at\n"
    "1,2026-03-02,north,1,0.9,2026-03-03 01:00\n2,2026-03-02,north,0,0.7,2026-03-03 01:00\n"
    "3,2026-03-02,south,1,0.2,2026-03-03 01:00\n4,2026-03-02,south,1,0.8,2026-03-03 01:00\n"
    "5,2026-03-03,south,0,0.1,2026-03-04 01:00\n"
)
VENDOR_SQL = "SELECT id, CAST(day AS DATE) AS day, region, outcome, CAST(score >= 0.5 AS INTEGER) AS decision, score FROM vendor_file\n"


def vendor_project(
    paths: ProjectPaths, rows: str, *, quality: str = "", sql: str = VENDOR_SQL
) -> ProjectPaths:
    """A small assessment of decisions scored elsewhere (a CSV), with no model registry."""
    root = paths.project_dir
    (root / "assessments" / "vendor.yaml").write_text(VENDOR_SPEC + quality)
    (root / "dbt_like_sql" / "vendor").mkdir(exist_ok=True)
    (root / "dbt_like_sql" / "vendor" / "vendor_decisions.sql").write_text(sql)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "vendor.csv").write_text(rows)
    return paths


def spec_variant(tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    """The demo spec with ``edit`` applied to its data, written to ``tmp_path/variant.yaml``."""
    data = yaml.safe_load(DEMO_SPEC.read_text())
    edit(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def parity_entry(entry_id: str = "parity", *, measure: dict | None = None, **fields):
    """A register entry on the sex parity ratio (warn below 0.9, breach below 0.8), with ``fields``."""
    from impact_assets.spec import RegisterEntry

    return RegisterEntry.model_validate(
        {
            "id": entry_id,
            "outcome": "comparable approval",
            "stakeholder": "applicants",
            "impact": "harm",
            "measure": {
                "source": "disparity",
                "metric": "demographic_parity",
                "feature_set": "sex",
                "method": "ratio",
                **(measure or {}),
            },
            "thresholds": {"direction": "higher_is_better", "warn": 0.9, "breach": 0.8},
            "owner": "fair-lending@lender.example",
            **fields,
        }
    )


HISTORY = {
    "register_snapshots": "snapshot_id, partition_key, snapshot_version, run_id",
    "register_entries": "snapshot_id, entry_id, value, status",
    "governance_actions_current": "action_id, entry_id, status",
    "runs": "run_id, partition_key, status",
}


def rows_of(database: Path, table: str, columns: str) -> list[tuple]:
    """``columns`` of ``impact.<table>``, sorted."""
    with duckdb.connect(str(database), read_only=True) as conn:
        return sorted(conn.execute(f"SELECT {columns} FROM impact.{table}").fetchall(), key=str)


def history(database: Path) -> dict[str, list[tuple]]:
    """What later runs must never lose: register snapshots and entries, governance actions, runs."""
    return {table: rows_of(database, table, columns) for table, columns in HISTORY.items()}
