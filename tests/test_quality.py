"""Data quality: GX expectations from the spec as asset checks; blocking failures stop fairness and mark the register."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from impact_assets import (
    ProjectPaths,
    SpecError,
    assessment_job_name,
    build_definitions,
    load_assessment,
)
from impact_assets.pipeline._quality import CONTRACT_CHECK, READABLE_CHECK
from impact_assets.quality import (
    MASK,
    QualityCheck,
    assessment_checks,
    check_name,
    evaluate_checks,
    fresh_after,
)
from impact_assets.spec import FreshnessSpec
from impact_assets.sql import compact_frame

from .conftest import DEMO_SPEC as DEMO
from .conftest import REPO, VENDOR_ROWS, same_day_outcomes, spec_variant, vendor_project


def _load(tmp_path: Path, edit):
    return load_assessment(
        spec_variant(tmp_path, edit), ProjectPaths.for_project(REPO, state_dir=tmp_path)
    )


def test_unknown_expectation_is_rejected_with_close_matches(tmp_path: Path):
    def edit(d):
        d["quality"]["tables"]["stg_applications"][0]["expectation"] = (
            "expect_column_values_to_be_uniqe"
        )

    with pytest.raises(
        SpecError,
        match="unknown expectation 'expect_column_values_to_be_uniqe' \\(did you mean 'expect_column_values_to_be_unique'",
    ) as info:
        _load(tmp_path, edit)
    assert info.value.context["field"] == "quality.tables.stg_applications.0.expectation"


def test_expectation_with_bad_arguments_is_rejected(tmp_path: Path):
    def edit(d):
        d["quality"]["tables"]["stg_applications"][1]["kwargs"]["mostly"] = 3

    with pytest.raises(
        SpecError,
        match="invalid arguments for expect_column_values_to_be_between: mostly: ensure this value is less than or equal to 1",
    ) as info:
        _load(tmp_path, edit)
    assert info.value.context["field"] == "quality.tables.stg_applications.1.kwargs"


def test_expectation_on_an_unknown_column_or_table(tmp_path: Path):
    with pytest.raises(
        SpecError, match="column 'agee' is not produced by SQL model 'stg_applications'"
    ):
        _load(
            tmp_path,
            lambda d: d["quality"]["tables"]["stg_applications"][1]["kwargs"].update(column="agee"),
        )
    with pytest.raises(
        SpecError, match="table 'applications', which is not a SQL model, source or the predictions"
    ):
        _load(
            tmp_path,
            lambda d: d["quality"]["tables"].update(
                applications=[
                    {
                        "expectation": "expect_table_row_count_to_be_between",
                        "kwargs": {"min_value": 1},
                    }
                ]
            ),
        )


def test_check_names_read_as_properties():
    assert (
        check_name("expect_column_values_to_not_be_null", {"column": "score"})
        == "score_values_are_not_null"
    )
    assert (
        check_name("expect_table_row_count_to_be_between", {"min_value": 1})
        == "row_count_is_between"
    )
    assert (
        check_name("expect_column_unique_value_count_to_be_between", {"column": "y"})
        == "y_unique_value_count_is_between"
    )


def test_results_match_a_hand_count_and_mask_sensitive_values(tmp_path: Path):
    spec = _load(tmp_path, lambda d: None).spec
    checks = [c for c in assessment_checks(spec) if c.table == "scored_applications"]
    frame = pd.DataFrame(
        {
            "repaid": [1, 0, 1, 1],
            "approved": [1, 1, 0, 0],
            "score": [0.1, 0.5, 1.2, -0.1],
            "sex": ["female", "male", "nonbinary", None],
            "age_band": ["<25"] * 4,
            "foreign_worker": ["yes"] * 4,
        }
    )
    results = {
        r.check.name: r
        for r in evaluate_checks(
            frame, checks, sensitive_columns={"sex", "age_band", "foreign_worker"}
        )
    }
    assert {name for name, r in results.items() if not r.success} == {
        "score_values_are_between",
        "sex_values_are_not_null",
        "sex_values_are_in_set",
    }
    assert (
        results["score_values_are_between"].unexpected_count,
        results["score_values_are_between"].unexpected_percent,
    ) == (2, 50.0)
    assert set(results["score_values_are_between"].sample) == {"1.2", "-0.1"}
    assert results["sex_values_are_in_set"].sample == (MASK,)
    assert results["row_count_is_between"].observed_value == "4"


DEFECTS = {
    "clean": (VENDOR_ROWS, set(), False),
    "null in a sensitive feature": (
        VENDOR_ROWS.replace("3,2026-03-02,south", "3,2026-03-02,"),
        {"region_values_are_not_null"},
        False,
    ),
    "unknown category": (
        VENDOR_ROWS.replace("3,2026-03-02,south", "3,2026-03-02,east"),
        {"region_values_are_in_set"},
        False,
    ),
    "score out of range": (
        VENDOR_ROWS.replace("2,2026-03-02,north,0,0.7", "2,2026-03-02,north,0,1.7"),
        {"score_values_are_between"},
        True,
    ),
    "null label": (
        VENDOR_ROWS.replace("2,2026-03-02,north,0,0.7", "2,2026-03-02,north,,0.7"),
        {"outcome_values_are_not_null"},
        True,
    ),
    "stale batch": (  # the batch of 03-02 is yesterday's extract: loaded before its window opened
        VENDOR_ROWS.replace("2026-03-03 01:00", "2026-03-02 02:59"),
        {"vendor_file__batch_is_fresh"},
        False,
    ),
    "empty partition": (
        VENDOR_ROWS.replace("2026-03-02", "2026-03-01"),
        {"row_count_is_between"},
        True,
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_fails_exactly_its_check(project: ProjectPaths, defect: str):
    rows, failing, blocks = DEFECTS[defect]
    vendor_project(project, rows)
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance
        )
        assert result.success
        evaluations = {
            e.check_name: e
            for e in result.get_asset_check_evaluations()
            if e.asset_key.path[-1] == "vendor_decisions"
        }
        group_metrics = instance.get_latest_materialization_event(
            dg.AssetKey(["vendor_scores", "group_metrics"])
        ).asset_materialization
    assert {name for name, e in evaluations.items() if not e.passed} == failing
    expected = {
        "region_values_are_not_null": "WARN",
        "region_values_are_in_set": "WARN",
        "vendor_file__batch_is_fresh": "WARN",
    }
    for name in failing:
        assert evaluations[name].severity.value == expected.get(name, "ERROR")
    with duckdb.connect(str(project.database), read_only=True) as conn:
        status, reason = conn.execute(
            "SELECT status, reason FROM impact.register_entries"
        ).fetchall()[0]
        computed = conn.execute("SELECT count(*) FROM impact.group_metrics").fetchall()[0][0]
        recorded = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM impact.quality_results"
            " WHERE check_name NOT IN (?, ?)",
            [READABLE_CHECK, CONTRACT_CHECK],
        ).fetchall()[0]
        builtin = conn.execute(
            "SELECT table_name, check_name, success FROM impact.quality_results"
            " WHERE check_name IN (?, ?) ORDER BY ALL",
            [READABLE_CHECK, CONTRACT_CHECK],
        ).fetchall()
    assert recorded == (len(evaluations), len(failing))
    # Every file here is readable; the contract is checked only where group metrics are computed.
    contract = [] if blocks else [("vendor_decisions", CONTRACT_CHECK, True)]
    assert builtin == sorted(
        [
            ("vendor_decisions", READABLE_CHECK, True),
            ("vendor_file", READABLE_CHECK, True),
            *contract,
        ]
    )
    if blocks:
        assert status == "insufficient_data"
        assert reason.startswith(
            "not evaluated: failed blocking data-quality checks: vendor_decisions."
        )
        assert computed == 0
        assert "impact_assets/blocked_by" in group_metrics.metadata
    else:
        assert not reason.startswith(
            "not evaluated"
        )  # the entry was evaluated on the data (its status may still be insufficient_data)
        assert computed > 0


def test_a_blocking_failure_on_a_raw_source_stops_the_register(demo_paths: ProjectPaths):
    day = "2026-03-02"
    batch = demo_paths.landing_dir / "credit_scoring" / "applications" / f"{day}.parquet"
    frame = duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(batch)]).df()
    frame.loc[frame.index[:3], "creditability"] = "unknown"
    with duckdb.connect() as conn:
        conn.register("f", frame)
        conn.execute("COPY f TO ? (FORMAT parquet)", [str(batch)])
    defs = build_definitions(demo_paths)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("credit_scoring")).execute_in_process(
            partition_key=day, instance=instance
        )
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert "raw_applications__creditability_values_are_in_set" in failed
    assert (
        failed["raw_applications__creditability_values_are_in_set"]
        .metadata["unexpected_count"]
        .value
        == 3
    )
    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        statuses = {
            s for (s,) in conn.execute("SELECT status FROM impact.register_entries").fetchall()
        }
        table = conn.execute(
            "SELECT DISTINCT table_name FROM impact.quality_results WHERE NOT success"
        ).fetchall()
    assert statuses == {"insufficient_data"}
    assert ("raw_applications",) in table


def test_register_entries_can_measure_a_quality_check(project: ProjectPaths):
    entry = """  - id: scores_in_range
    outcome: Scores are probabilities.
    stakeholder: applicants
    impact: harm
    measure: {source: quality, table: vendor_decisions, check: score_values_are_between, metric: unexpected_percent}
    thresholds: {direction: lower_is_better, breach: 10}
    owner: risk@lender.example
"""
    # scores above 0.85 break this (stricter, warn-only) expectation: one row of four on 2026-03-02
    vendor_project(
        project,
        VENDOR_ROWS,
        quality="quality:\n  tables:\n    vendor_decisions:\n      - {expectation: expect_column_values_to_be_between, kwargs: {column: score, min_value: 0, max_value: 0.85}, severity: warn, name: score_values_are_between}\n  defaults: false\n",
    )
    spec_file = project.assessments_dir / "vendor.yaml"
    spec_file.write_text(spec_file.read_text().replace("register:\n", "register:\n" + entry))
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        assert (
            defs.resolve_job_def(assessment_job_name("vendor_scores"))
            .execute_in_process(partition_key="2026-03-02", instance=instance)
            .success
        )
    with duckdb.connect(str(project.database), read_only=True) as conn:
        value, n, status = conn.execute(
            "SELECT value, n, status FROM impact.register_entries WHERE entry_id = 'scores_in_range'"
        ).fetchall()[0]
    assert (value, n, status) == (25.0, 4, "breach")


def test_a_quality_reference_must_name_an_existing_check(tmp_path: Path):
    entries = same_day_outcomes(yaml.safe_load(DEMO.read_text()))["register"]
    i = next(i for i, e in enumerate(entries) if e["measure"]["source"] == "quality")

    def edit(d):
        same_day_outcomes(d)
        d["register"][i]["measure"]["check"] = "repaid_is_recorded"

    with pytest.raises(
        SpecError, match="no quality check 'repaid_is_recorded' on table 'scored_applications'"
    ) as info:
        _load(tmp_path, edit)
    assert info.value.context["field"] == f"register.{i}.measure.check"


@pytest.mark.parametrize(
    ("deadline", "hours", "timezone", "day", "opens"),
    [
        ("0 3 * * *", 24, "UTC", "2026-03-02", "2026-03-02T03:00:00+00:00"),
        # Friday's batch is due by Monday 06:30 (weekday deadlines); the window opens 12 hours before.
        ("30 6 * * 1-5", 12, "UTC", "2026-03-06", "2026-03-08T18:30:00+00:00"),
        # Berlin switches to summer time in the night of 2026-03-29: the 03:00 deadline is 01:00 UTC.
        ("0 3 * * *", 2, "Europe/Berlin", "2026-03-29", "2026-03-30T01:00:00+02:00"),
        ("0 0 * * *", 24, "UTC", "2026-12-31", "2026-12-31T00:00:00+00:00"),
    ],
)
def test_freshness_window_opens_before_the_deadline_after_the_day(
    deadline: str, hours: int, timezone: str, day: str, opens: str
):
    freshness = FreshnessSpec(deadline_cron=deadline, lower_bound_hours=hours)
    assert fresh_after(freshness, day, timezone) == dt.datetime.fromisoformat(opens)


def test_a_deadline_that_is_not_cron_is_rejected(tmp_path: Path):
    def edit(spec: dict) -> None:
        spec["quality"]["freshness"] = {"deadline_cron": "3am daily"}

    with pytest.raises(SpecError) as info:
        _load(tmp_path, edit)
    assert "quality.freshness.deadline_cron" in str(info.value)
    assert "'3am daily' is not a cron expression" in str(info.value)


def test_a_check_on_a_column_the_source_lacks_names_table_and_column(project: ProjectPaths):
    rows = "id,day,region,outcome,score\n1,2026-03-02,north,1,0.9\n2,2026-03-02,south,0,0.7\n"
    vendor_project(project, rows)  # the spec declares loaded_at_column: loaded_at
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance, raise_on_error=False
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message
    assert (
        "the data-quality checks on 'vendor_file' name columns it does not have: ['loaded_at']"
        in message
    )
    assert "vendor.yaml" in message


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_a_range_check_on_timestamps_counts_what_the_timestamps_say(zone):
    stamps = pd.to_datetime(
        [
            "2026-03-02 02:59:59.999999",
            "2026-03-02 03:00:00.000000",
            "2026-03-03 01:00:00.000000",
            None,
        ]
    )
    frame = pd.DataFrame({"loaded_at": stamps.tz_localize(zone) if zone else stamps})
    check = QualityCheck(
        "batch_is_fresh",
        "raw",
        "expect_column_values_to_be_between",
        {"column": "loaded_at", "min_value": "2026-03-02 03:00:00"},
        "warn",
        False,
        True,
    )
    (result,) = evaluate_checks(frame, [check])
    # one row a microsecond early (the NULL is not judged), shown as the timestamp it is
    assert (result.success, result.element_count, result.unexpected_count) == (False, 4, 1)
    assert result.sample == ("2026-03-02 02:59:59.999999" + ("+01:00" if zone else ""),)
    assert list(frame.columns) == ["loaded_at"]  # the caller's frame is left as it was


def test_the_checked_frame_holds_the_rows_as_duckdb_gives_them():
    """With NULLs: numbers as ``.df()`` gives them, text of few values as categories, other text as text."""
    conn = duckdb.connect()
    conn.execute(
        "CREATE TABLE t AS SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE i END AS n, "
        "CASE WHEN i % 5 = 0 THEN NULL ELSE 'v''' || (i % 4) END AS s, i / 2 AS x, 'n' || i AS note, "
        "TIMESTAMPTZ '2026-03-02 00:00:00+00' + to_seconds(i) AS at FROM range(2500000) AS r(i)"
    )
    query = "SELECT * FROM t WHERE i < ?"
    frame = compact_frame(conn, query, [2_300_000])
    expected = conn.sql(query, params=[2_300_000]).df()
    pd.testing.assert_frame_equal(frame.astype({"s": str}), expected.astype({"s": str}))
    # as DuckDB gives them (a nullable integer as Int64), but text of few values as a categorical;
    # text of too many values for one stays text
    assert frame.dtypes.to_dict() == {**expected.dtypes.to_dict(), "s": "category"}
    assert str(expected["note"].dtype) == "str"
    assert not frame["s"].cat.ordered and len(frame["s"].cat.categories) == 4
    empty = compact_frame(conn, query, [-1])
    assert empty.empty and list(empty.columns) == ["i", "n", "s", "x", "note", "at"]
