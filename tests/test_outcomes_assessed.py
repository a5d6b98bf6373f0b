"""Outcomes that arrive late, assessed end to end: awaiting, estimated and realised cohorts, the
outcomes sensor against a real Dagster instance, and outcomes that break their contract."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from impact_assets import ProjectPaths, build_definitions, discover_assessments, pipeline
from impact_assets.cli import simulate_days, train_version
from impact_assets.orchestration import outcomes_job_name
from impact_assets.report import build_report

from .conftest import DEMO_SPEC, alone, assess, history

DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
OUTCOME_ENTRIES = {
    "equal_opportunity_sex_age",
    "young_applicants_wrongly_declined",
    "defaults_among_approved",
    "overall_accuracy",
    "score_discrimination",
    "calibration",
    "outcomes_recorded",
    "lender_net_benefit",
    "offer_v2_repayment_effect",
}


def _project(tmp_path: Path, days: list[dt.date], known_by: dt.date) -> ProjectPaths:
    """The demo with 1,500 applications a day and the outcomes observed by ``known_by``."""
    data = yaml.safe_load(DEMO_SPEC.read_text())
    data["simulation"]["rows_per_day"] = 1500
    data["fairness"]["bootstrap"]["resamples"] = 200
    paths = alone(data, tmp_path / "state")
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, days, today=known_by)
    train_version(assessment)
    return paths


def _entries(conn: duckdb.DuckDBPyConnection, snapshot_id: str) -> pd.DataFrame:
    return (
        conn.execute("SELECT * FROM impact.register_entries WHERE snapshot_id = ?", [snapshot_id])
        .df()
        .set_index("entry_id")
    )


def test_a_cohort_awaits_its_outcomes_with_estimates_then_is_realised(tmp_path: Path):
    paths = _project(tmp_path, DAYS[:2], known_by=dt.date(2026, 3, 5))
    with dg.instance_for_test() as instance:
        assess(paths, instance, DAYS[:2])
    (assessment,) = discover_assessments(paths)
    day = DAYS[1].isoformat()
    with duckdb.connect(str(paths.database)) as conn:
        pipeline.prepare(conn, assessment)
        # on 2026-03-05 the cohort of 03-03 (maturity 3 days) still awaits a third of its outcomes
        early = pipeline.compute_outcomes(
            conn, assessment, day, "early", today=DAYS[2] + dt.timedelta(1)
        )
        assert not early.matured and early.matures_on == dt.date(2026, 3, 6)
        assert 0.3 < early.coverage < 0.9
        snapshot, _ = pipeline.snapshot_register(
            conn, assessment, day, "early", today=dt.date(2026, 3, 5)
        )
        awaiting = _entries(conn, snapshot.snapshot_id)
        assert (
            set(awaiting.index[awaiting["status"] == "awaiting_outcomes"])
            | set(awaiting.index[awaiting["basis"] == "estimated"])
            == OUTCOME_ENTRIES
        )
        assert (
            awaiting.loc[list(OUTCOME_ENTRIES), "matures_on"] == pd.Timestamp("2026-03-06")
        ).all()
        assert (awaiting.drop(index=list(OUTCOME_ENTRIES))["basis"] == "decision_time").all()
        accuracy = awaiting.loc["overall_accuracy"]
        assert accuracy["basis"] == "estimated" and accuracy["status"] == "awaiting_outcomes"
        assert accuracy["ci_low"] < accuracy["value"] < accuracy["ci_high"]
        assert "estimated" in accuracy["reason"] and "matures on 2026-03-06" in accuracy["reason"]
        # the KPI on outcomes is not estimated: it waits, with no value
        assert pd.isna(awaiting.loc["lender_net_benefit", "value"])
        # the estimate is opted in to warn: never pass or breach
        assert awaiting.loc["equal_opportunity_sex_age", "status"] in {"awaiting_outcomes", "warn"}

        # the rest of the outcomes land: the same cohort, assessed on 03-06, is realised
        simulate_days(assessment, DAYS[:2], today=dt.date(2026, 3, 6))
        pipeline.prepare(conn, assessment)
        late = pipeline.compute_outcomes(conn, assessment, day, "late", today=dt.date(2026, 3, 6))
        assert late.matured and late.coverage == 1.0
        assert late.outcomes_version != early.outcomes_version
        assert set(late.group_metrics["basis"]) == {"realised"}
        snapshot, _ = pipeline.snapshot_register(
            conn, assessment, day, "late", today=dt.date(2026, 3, 6), reason="outcomes arrived"
        )
        realised = _entries(conn, snapshot.snapshot_id)
        assert set(realised.loc[list(OUTCOME_ENTRIES), "basis"]) == {"realised"}
        assert "awaiting_outcomes" not in set(realised["status"])
        # the estimate made before was close to what was realised
        assert abs(accuracy["value"] - realised.loc["overall_accuracy", "value"]) < 0.06
        (reason,) = conn.execute(
            "SELECT reason FROM impact.register_snapshots WHERE snapshot_id = ?",
            [snapshot.snapshot_id],
        ).fetchall()[0]
        assert reason == "outcomes arrived"
        # the report puts the estimate made before beside what was realised, and whose outcomes are known
        report = build_report(conn, assessment, day, tmp_path / "reports")
    section = report.markdown.split("## Outcomes that arrive late")[1].split("\n## ")[0]
    assert "Cohort **2026-03-03**: matured" in section
    (row,) = [line for line in section.splitlines() if line.startswith("| accuracy |")]
    realised_cell, estimated_cell = row.split("|")[2:4]
    assert float(realised_cell) == pytest.approx(
        realised.loc["overall_accuracy", "value"], abs=1e-3
    )
    assert float(estimated_cell) == pytest.approx(accuracy["value"], abs=1e-3)
    assert "Whose outcomes are known" in section and "| sex | female |" in section


def _requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("credit_scoring__outcomes_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    return list(sensor.evaluate_tick(context).run_requests or [])


def test_the_outcomes_sensor_reassesses_exactly_the_cohorts_whose_outcomes_landed(
    tmp_path: Path,
):
    paths = _project(tmp_path, DAYS, known_by=DAYS[0])  # no outcome has arrived yet
    (assessment,) = discover_assessments(paths)
    defs = build_definitions(paths)
    with dg.instance_for_test() as instance:
        assess(paths, instance, DAYS)
        with duckdb.connect(str(paths.database), read_only=True) as conn:
            decision_time = conn.execute(
                "SELECT count(*), max(computed_at) FROM impact.group_metrics"
            ).fetchall()
        assert _requests(defs, instance) == []  # matured by date, but no outcome known

        simulate_days(assessment, DAYS)  # a quarter's worth of outcomes lands at once
        requests = _requests(defs, instance)
        assert sorted(r.partition_key for r in requests) == [d.isoformat() for d in DAYS]
        assert len({r.run_key for r in requests}) == 3
        job = defs.resolve_job_def(outcomes_job_name("credit_scoring"))
        for request in requests:
            assert request.tags["impact_assets/snapshot_reason"] == "outcomes arrived"
            run = job.execute_in_process(
                partition_key=request.partition_key, instance=instance, tags=request.tags
            )
            assert run.success
        assert _requests(defs, instance) == []  # unchanged outcomes: nothing

        # one outcome corrected (a default recorded as repaid): that cohort only, once more
        landing = paths.state_dir / "landing/credit_scoring/outcomes"
        target = sorted(landing.glob("*.parquet"))[1]
        corrected = pd.read_parquet(target)
        corrected.loc[0, "repaid"] = 1 - corrected.loc[0, "repaid"]
        corrected.to_parquet(target)
        decision = corrected.loc[0, "application_id"][:8]
        (request,) = _requests(defs, instance)
        assert request.partition_key == dt.datetime.strptime(decision, "%Y%m%d").date().isoformat()

    with duckdb.connect(str(paths.database), read_only=True) as conn:
        # decision-time results were left alone by the re-assessments
        assert (
            conn.execute("SELECT count(*), max(computed_at) FROM impact.group_metrics").fetchall()
            == decision_time
        )
        reasons = conn.execute(
            "SELECT partition_key, reason FROM impact.register_snapshots WHERE snapshot_version = 2 ORDER BY 1"
        ).fetchall()
        assert reasons == [(d.isoformat(), "outcomes arrived") for d in DAYS]


def _break(rows: pd.DataFrame, case: str) -> pd.DataFrame:
    """The day's outcomes made bad in one way."""
    first = rows.iloc[[0]].copy()
    if case == "duplicate":
        return pd.concat([rows, first.assign(repaid=1 - first["repaid"])], ignore_index=True)
    if case == "before_decision":
        rows.loc[0, "observed_on"] = rows.loc[0, "observed_on"] - dt.timedelta(days=5)
        return rows
    if case == "not_binary":
        rows.loc[0, "repaid"] = 2
        return rows
    unknown = first.assign(application_id="19990101-000001", observed_on=dt.date(2026, 3, 2))
    return pd.concat([rows, unknown], ignore_index=True)


BAD = {
    "duplicate": "raw_outcomes.application_id has 1 ids with more than one outcome; e.g. {{'application_id': '{id}'",
    "before_decision": "raw_outcomes.observed_on is before the decision for 1 outcomes of cohort 2026-03-02; e.g. {{'application_id': '{id}'",
    "not_binary": "raw_outcomes.repaid must be binary, but cohort 2026-03-02 has the values ['0', '1', '2']; e.g. {{'application_id': '{id}'",
}


@pytest.mark.parametrize("case", [*BAD, "unknown_id"])
def test_bad_outcomes_are_refused_by_name_and_the_nights_decisions_still_assessed(
    tmp_path: Path, case: str
):
    paths = _project(tmp_path, DAYS[:1], known_by=dt.date(2026, 3, 10))
    with dg.instance_for_test() as instance:
        assess(paths, instance, DAYS[:1])
        before = history(paths.database)
        landing = paths.state_dir / "landing/credit_scoring/outcomes"
        target = sorted(landing.glob("*.parquet"))[0]
        rows = pd.read_parquet(target)
        first = rows.loc[0, "application_id"]
        _break(rows, case).to_parquet(target)
        (run,) = assess(paths, instance, DAYS[:1])
    checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
    after = history(paths.database)
    assert all(set(before[t]) <= set(after[t]) for t in before)  # nothing earlier lost
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        snapshot = conn.execute(
            "SELECT snapshot_id FROM impact.register_snapshots WHERE run_id = ?", [run.run_id]
        ).fetchall()[0][0]
        entries = _entries(conn, snapshot)
        decided = conn.execute(
            "SELECT count(*) FROM impact.group_metrics WHERE run_id = ?", [run.run_id]
        ).fetchall()[0][0]
    assert decided > 0  # the night's decision-time metrics were written
    assert entries.loc["approval_parity_sex", "status"] in {"pass", "warn", "breach"}
    if case == "unknown_id":
        assert checks["outcomes_contract"].passed
        warning = checks["outcomes_match_decisions"]
        assert not warning.passed and warning.severity == dg.AssetCheckSeverity.WARN
        assert (
            "1 rows of raw_outcomes observed by the last day assessed have an application_id that is no decision of scored_applications; e.g. {'application_id': '19990101-000001'"
            in warning.metadata["problem"].value
        )
        assert entries.loc["overall_accuracy", "status"] != "insufficient_data"
        return
    contract = checks["outcomes_contract"]
    assert not contract.passed and contract.severity == dg.AssetCheckSeverity.ERROR
    message = BAD[case].format(id=first)
    assert message in contract.metadata["violation"].value
    awaited = entries.loc[list(OUTCOME_ENTRIES)]
    assert set(awaited["status"]) == {"insufficient_data"}
    assert awaited["reason"].str.contains(message, regex=False).all()
