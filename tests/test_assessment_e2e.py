"""Whole assessments under a real Dagster instance, on a real DuckDB file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score

from impact_assets import ProjectPaths, assessment_job_name, build_definitions, register_check_name
from impact_assets._markdown import with_interval

from .conftest import DAYS, DEMO_SPEC, REPO, VENDOR_ROWS, assess, vendor_project

EXPECTED_ASSETS = {
    "credit_scoring/raw_applications",
    "credit_scoring/raw_outcomes",
    "credit_scoring/outcome_metrics",
    "credit_scoring/staging/stg_applications",
    "credit_scoring/predictions",
    "credit_scoring/marts/scored_applications",
    "credit_scoring/group_metrics",
    "credit_scoring/disparities",
    "credit_scoring/kpis",
    "credit_scoring/drift",
    "credit_scoring/scenarios",
    "credit_scoring/sensitivity",
    "credit_scoring/causal_estimates",
    "credit_scoring/impact_register_snapshot",
    "credit_scoring/impact_report",
    "credit_scoring/release_decision",
    "credit_scoring/promoted_model",
}
QUALITY_CHECKS = {
    "credit_scoring/staging/stg_applications": {
        "raw_applications__creditability_values_are_in_set",
        "raw_applications__batch_is_fresh",
        "application_id_values_are_unique",
        "age_values_are_between",
        "credit_amount_values_are_between",
    },
    "credit_scoring/predictions": {"model_version_values_are_not_null"},
    "credit_scoring/marts/scored_applications": {
        "row_count_is_between",
        "approved_values_are_not_null",
        "approved_unique_value_count_is_between",
        "score_values_are_not_null",
        "score_values_are_between",
        "sex_values_are_not_null",
        "sex_values_are_in_set",
        "age_band_values_are_not_null",
        "age_band_values_are_in_set",
        "foreign_worker_values_are_not_null",
        "foreign_worker_values_are_in_set",
    },
}
EXPECTED_CHECKS = {
    "approval_parity_sex",
    "approval_parity_age",
    "equal_opportunity_sex_age",
    "young_applicants_wrongly_declined",
    "foreign_worker_approval_parity",
    "defaults_among_approved",
    "overall_accuracy",
    "approval_parity_women_vs_men",
    "score_discrimination",
    "calibration",
    "outcomes_recorded",
    "lender_net_benefit",
    "score_drift",
    "approval_parity_sex_at_0_6",
    "sex_gap_through_credit_history",
    "offer_v2_repayment_effect",
}


def test_definitions_shape(demo_state: ProjectPaths):
    defs = build_definitions(demo_state)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    assert {k.to_user_string() for k in graph.materializable_asset_keys} == EXPECTED_ASSETS - {
        "credit_scoring/raw_applications",
        "credit_scoring/raw_outcomes",
    }
    checks: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        checks.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert checks == {
        **QUALITY_CHECKS,
        "credit_scoring/impact_register_snapshot": EXPECTED_CHECKS,
        "credit_scoring/release_decision": {"release_is_approved"},
        "credit_scoring/group_metrics": {"fairness_inputs_meet_the_contract"},
        "credit_scoring/outcome_metrics": {"outcomes_contract", "outcomes_match_decisions"},
    }
    # a hold or rollback is a governance outcome, not a failed run: the check informs, it does not block
    assert not graph.get_check_spec(
        dg.AssetCheckKey(dg.AssetKey(["credit_scoring", "release_decision"]), "release_is_approved")
    ).blocking
    for key in ("credit_scoring/raw_applications", "credit_scoring/predictions"):
        assert graph.get(dg.AssetKey.from_user_string(key)).freshness_policy is not None
    assert [j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")] == [
        "credit_scoring__assessment",
        "credit_scoring__outcomes",
        "credit_scoring__record_action_decision",
        "credit_scoring__release",
        "credit_scoring__sign_off_release",
    ]
    release_job = defs.resolve_job_def("credit_scoring__release")
    assert {k.to_user_string() for k in release_job.asset_layer.selected_asset_keys} == {
        "credit_scoring/release_decision",
        "credit_scoring/promoted_model",
    }
    snapshot = graph.get(dg.AssetKey(["credit_scoring", "impact_register_snapshot"]))
    assert {p.to_user_string() for p in snapshot.parent_keys} == {
        "credit_scoring/group_metrics",
        "credit_scoring/disparities",
        "credit_scoring/outcome_metrics",
        "credit_scoring/kpis",
        "credit_scoring/drift",
        "credit_scoring/scenarios",
        "credit_scoring/sensitivity",
        "credit_scoring/causal_estimates",
    }
    mart = graph.get(dg.AssetKey(["credit_scoring", "marts", "scored_applications"]))
    assert {p.to_user_string() for p in mart.parent_keys} == {
        "credit_scoring/staging/stg_applications",
        "credit_scoring/predictions",
    }
    lineage = (
        defs.resolve_assets_def(mart.key).specs_by_key[mart.key].metadata["dagster/column_lineage"]
    )
    approved = lineage.deps_by_column["approved"]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in approved] == [
        ("credit_scoring/predictions", "decision")
    ]
    assert isinstance(snapshot.partitions_def, dg.DailyPartitionsDefinition)


def _run(paths: ProjectPaths, instance: dg.DagsterInstance, day: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(paths)
    return defs.resolve_job_def(assessment_job_name("credit_scoring")).execute_in_process(
        partition_key=day, instance=instance
    )


def test_demo_partition_materializes_end_to_end(demo_paths: ProjectPaths):
    day = DAYS[0].isoformat()
    with dg.instance_for_test() as instance:
        result = _run(demo_paths, instance, day)
        assert result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert set(checks) == EXPECTED_CHECKS | set().union(*QUALITY_CHECKS.values()) | {
            "fairness_inputs_meet_the_contract",
            "outcomes_contract",
            "outcomes_match_decisions",
        }
        assert checks["outcomes_contract"].passed and checks["outcomes_match_decisions"].passed
        # every check's result belongs to the partition it judged, not to the clock
        assert {e.partition for e in checks.values()} == {day}
        assert all(checks[name].passed for name in set().union(*QUALITY_CHECKS.values()))
        rerun = _run(demo_paths, instance, day)
        assert rerun.success
        observed = instance.fetch_observations(
            dg.AssetKey(["credit_scoring", "raw_applications"]), limit=5
        ).records
        assert (
            observed and observed[0].event_log_entry.asset_observation.tags["dagster/data_version"]
        )

    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        snapshots = conn.execute(
            "SELECT snapshot_version, run_id, model_version FROM impact.register_snapshots WHERE partition_key = ? ORDER BY snapshot_version",
            [day],
        ).fetchall()
        assert [(v, r, m) for v, r, m in snapshots] == [
            (1, result.run_id, "1"),
            (2, rerun.run_id, "1"),
        ]
        entries = conn.execute(
            "SELECT e.entry_id, e.status, e.value, e.n FROM impact.register_entries e JOIN impact.register_snapshots s USING (snapshot_id) "
            "WHERE s.snapshot_version = 1 AND s.partition_key = ? ORDER BY entry_id",
            [day],
        ).df()
        decisions = conn.execute(
            "SELECT * EXCLUDE (repaid) FROM credit_scoring.scored_applications WHERE application_date = ?",
            [day],
        ).df()
        decided = conn.execute(
            "SELECT feature_set, group_key, metric, value, n FROM impact.group_metrics WHERE run_id = ?",
            [result.run_id],
        ).df()
        realised = conn.execute(
            "SELECT feature_set, group_key, metric, value, n, matured FROM impact.outcome_group_metrics "
            "WHERE run_id = ? AND basis = 'realised'",
            [result.run_id],
        ).df()
        gaps = conn.execute(
            "SELECT * FROM impact.disparities WHERE run_id = ?", [result.run_id]
        ).df()

    # the outcomes arrive in their own files; joined here by hand, as a reviewer would
    outcomes = pd.concat(
        pd.read_parquet(f)
        for f in (demo_paths.state_dir / "landing/credit_scoring/outcomes").glob("*.parquet")
    )
    rows = decisions.merge(outcomes[["application_id", "repaid"]], on="application_id", how="inner")
    assert len(rows) == len(decisions) > 1000  # a matured day: every outcome known
    assert realised["matured"].all()
    assert set(decided["metric"]) == {"count", "selection_rate"}  # decision-time only
    ours = pd.concat([decided, realised[realised.metric != "selection_rate"]])
    assert set(entries["entry_id"]) == EXPECTED_CHECKS
    assert set(checks) & {"release_is_approved"} == set()  # the release is decided by its own job
    assert set(entries["status"]) <= {"pass", "warn", "breach", "insufficient_data", "suppressed"}
    for entry_id, status in zip(entries["entry_id"], entries["status"], strict=True):
        evaluation = checks[register_check_name(entry_id)]
        assert evaluation.passed == (status == "pass")
        assert evaluation.metadata["status"].value == status
        # named after the entry, its outcome in words, with what a reviewer needs beside the value
        assert evaluation.description.startswith(f"{status}: ")
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        assert meta["owner"].endswith("@lender.example") and meta["model_version"] == "1"
        assert meta["action"] in ("notify", "review", "block_release", "rollback")
        assert meta["result"] == with_interval(meta["value"], meta["ci_low"], meta["ci_high"])

    # the numbers behind the register equal fairlearn's on the raw scored rows
    for feature_set, features in {
        "sex": ["sex"],
        "age_band": ["age_band"],
        "sex×age_band": ["sex", "age_band"],
    }.items():
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
                "precision": precision_score,
                "accuracy": accuracy_score,
            },
            y_true=rows["repaid"],
            y_pred=rows["approved"],
            sensitive_features=rows[features],
        )
        for metric in frame.by_group.columns:
            for key, expected in frame.by_group[metric].dropna().items():
                group = "×".join(key) if isinstance(key, tuple) else key
                got = ours[
                    (ours.feature_set == feature_set)
                    & (ours.group_key == group)
                    & (ours.metric == metric)
                ]
                if got["n"].iloc[0] >= 50:
                    assert got["value"].iloc[0] == pytest.approx(expected, abs=1e-9)
                else:
                    assert pd.isna(got["value"].iloc[0])
    parity = entries.set_index("entry_id").loc["approval_parity_sex"]
    by_sex = MetricFrame(
        metrics=selection_rate,
        y_true=rows["repaid"],
        y_pred=rows["approved"],
        sensitive_features=rows["sex"],
    )
    assert parity["value"] == pytest.approx(by_sex.ratio(), abs=1e-12)
    assert parity["n"] == len(rows)
    foreign = gaps[(gaps.feature_set == "foreign_worker") & (gaps.metric == "selection_rate")]
    assert (foreign["groups_compared"] >= 1).all()


def test_assessment_of_a_model_scored_elsewhere(project: ProjectPaths):
    vendor_project(project, VENDOR_ROWS)
    defs = build_definitions(project)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "vendor_scores/predictions" not in keys
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance
        )
    assert result.success
    with duckdb.connect(str(project.database), read_only=True) as conn:
        value, status, n = conn.execute(
            "SELECT value, status, n FROM impact.register_entries"
        ).fetchall()[0]
    # north approves 2/2, south 1/2 on 2026-03-02: ratio 0.5
    assert (value, status, n) == (0.5, "breach", 4)


def test_bad_data_is_refused_with_a_clear_error_and_the_register_says_so(project: ProjectPaths):
    # without the derived quality checks, the fairness step itself refuses non-binary labels
    vendor_project(
        project,
        "id,day,region,outcome,score,loaded_at\n1,2026-03-02,north,2,0.9,2026-03-03\n"
        "2,2026-03-02,south,0,0.7,2026-03-03\n3,2026-03-02,south,1,0.7,2026-03-03\n",
        quality="quality: {defaults: false}\n",
    )
    defs = build_definitions(project)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("vendor_scores")).execute_in_process(
            partition_key="2026-03-02", instance=instance, raise_on_error=False
        )
    assert result.success  # the partition is recorded as not assessable, not lost
    (contract,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "fairness_inputs_meet_the_contract"
    ]
    assert not contract.passed and contract.severity == dg.AssetCheckSeverity.ERROR
    assert "'outcome' must be binary" in contract.metadata["violation"].value
    with duckdb.connect(str(project.database), read_only=True) as conn:
        status, reason = conn.execute(
            "SELECT status, reason FROM impact.register_entries"
        ).fetchall()[0]
        assert conn.execute("SELECT count(*) FROM impact.group_metrics").fetchall() == [(0,)]
    assert status == "insufficient_data"
    assert "fairness_inputs_meet_the_contract ('outcome' must be binary" in reason


@pytest.mark.slow
def test_dg_check_defs_loads_the_project(tmp_path: Path):
    dg_cli = Path(sys.executable).with_name("dg")
    done = subprocess.run(
        [str(dg_cli), "check", "defs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "IMPACT_ASSETS_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_release_approves_then_rolls_back_an_unfair_retrain(demo_paths: ProjectPaths):
    from impact_assets import discover_assessments, release_job_name
    from impact_assets.cli import train_version

    day = DAYS[1].isoformat()
    (assessment,) = discover_assessments(demo_paths)
    registry = assessment.registry
    defs = build_definitions(demo_paths)
    assess = defs.resolve_job_def(assessment_job_name("credit_scoring"))
    release = defs.resolve_job_def(release_job_name("credit_scoring"))
    with dg.instance_for_test() as instance:
        assert assess.execute_in_process(partition_key=day, instance=instance).success
        recommended = release.execute_in_process(partition_key=day, instance=instance)
        assert recommended.success  # approve is a recommendation: two approvers must sign it off
        assert registry.approved() is None
        assert registry.status("1")["status"] == "awaiting_sign_off"
        sign_off = defs.resolve_job_def("credit_scoring__sign_off_release")
        for approver in ("Dana Okafor", "Tomás Ibarra"):  # from the launchpad's typed run config
            signed = sign_off.execute_in_process(
                run_config={
                    "ops": {
                        "credit_scoring__sign_off_release_op": {
                            "config": {
                                "model_version": "1",
                                "by": approver,
                                "rationale": "register, report and open actions reviewed",
                            }
                        }
                    }
                },
                instance=instance,
            )
            assert signed.success
        assert registry.approved() == "1" and registry.status("1")["status"] == "approved"
        (observation,) = [
            e.asset_observation_data.asset_observation
            for e in signed.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        assert observation.asset_key == dg.AssetKey(["credit_scoring", "impact_register_snapshot"])
        assert (
            "| 1 | approved | approve | 2 of 2 |"
            in observation.metadata["impact_assets/releases"].value
        )

        unfair = train_version(assessment, unfair=True)
        assert assess.execute_in_process(partition_key=day, instance=instance).success
        # every snapshot's metadata carries the release state and the live actions too
        snapshot = instance.get_latest_materialization_event(
            dg.AssetKey(["credit_scoring", "impact_register_snapshot"])
        ).asset_materialization.metadata
        assert "| 1 | approved | approve | 2 of 2 |" in snapshot["impact_assets/releases"].value
        assert snapshot["impact_assets/open_actions"].value >= 1
        assert "| approval_parity_sex | open |" in snapshot["impact_assets/actions"].value
        # a rollback is the correct outcome: the run succeeds, the check says why, version 1 serves
        rolled = release.execute_in_process(partition_key=day, instance=instance)
        assert rolled.success
        (evaluation,) = [
            e.event_specific_data
            for e in rolled.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        assert not evaluation.passed
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.description.startswith(
            f"rollback model version {unfair} (roll back to 1)"
        )
        promoted = instance.get_latest_materialization_event(
            dg.AssetKey(["credit_scoring", "promoted_model"])
        ).asset_materialization.metadata
        assert promoted["impact_assets/serving_version"].value == "1"
        assert promoted["impact_assets/promoted"].value is False
        assert promoted["impact_assets/outcome"].value == (
            f"model version {unfair} not promoted (rolled_back, 0 of 0 sign-offs); version 1 serves"
        )
    assert registry.approved() == "1"
    assert registry.status(unfair)["status"] == "rolled_back"
    assert registry.latest(usable=True).version == "1"
    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        decisions = conn.execute(
            "SELECT model_version, decision, rollback_to FROM impact.release_decisions ORDER BY decided_at"
        ).fetchall()
        level = conn.execute(
            "SELECT impact_level FROM impact.register_snapshots ORDER BY taken_at"
        ).fetchall()
        actions = conn.execute(
            "SELECT entry_id, action_type FROM impact.governance_actions WHERE entry_id = 'approval_parity_sex'"
        ).fetchall()
    assert decisions == [("1", "approve", None), (unfair, "rollback", "1")]
    assert registry.approved() == "1"
    assert [lv for (lv,) in level] == [
        "III",
        "IV",
    ]  # mitigation credit is lost while the sex-parity control breaches
    assert actions == [("approval_parity_sex", "rollback")]

    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        # the rollback was what the guardrail's action asked for: it resolved it, on the record
        assert conn.execute(
            "SELECT status FROM impact.governance_actions_current WHERE entry_id = 'approval_parity_sex'"
        ).fetchall() == [("resolved",)]
        assert conn.execute(
            "SELECT detail FROM impact.governance_action_events WHERE event = 'resolved'"
        ).fetchall() == [(f"model version {unfair} rolled back to 1 (automatic)",)]
        # an open action of the unfair version, acknowledged from the launchpad's typed run config
        action_id = conn.execute(
            "SELECT action_id FROM impact.governance_actions_current WHERE status = 'open' ORDER BY opened_at LIMIT 1"
        ).fetchall()[0][0]
    config = {"action_id": action_id[:8], "decision": "acknowledge", "by": "Fair Lending Lead"}
    decide = defs.resolve_job_def("credit_scoring__record_action_decision")
    op = "credit_scoring__record_action_decision_op"
    with dg.instance_for_test() as instance:
        assert decide.execute_in_process(
            run_config={"ops": {op: {"config": config}}}, instance=instance
        ).success
        again = decide.execute_in_process(
            run_config={"ops": {op: {"config": config}}}, instance=instance, raise_on_error=False
        )
    assert not again.success
    (failure,) = [e for e in again.all_events if e.event_type_value == "STEP_FAILURE"]
    assert (
        "is acknowledged: it cannot be acknowledged"
        in failure.step_failure_data.user_failure_data.description
    )
    with duckdb.connect(str(demo_paths.database), read_only=True) as conn:
        assert conn.execute(
            "SELECT status, acknowledged_by FROM impact.governance_actions_current WHERE action_id = ?",
            [action_id],
        ).fetchall() == [("acknowledged", "Fair Lending Lead")]


def test_two_assessments_share_a_code_location_and_a_database_without_colliding(
    demo_state: ProjectPaths, tmp_path: Path
):
    shutil.copytree(REPO / "dbt_like_sql", tmp_path / "dbt_like_sql")
    (tmp_path / "assessments").mkdir()
    shutil.copy(DEMO_SPEC, tmp_path / "assessments" / "credit_scoring.yaml")
    shutil.copytree(demo_state.state_dir, tmp_path / "state")
    paths = vendor_project(
        ProjectPaths.for_project(tmp_path, state_dir=tmp_path / "state"), VENDOR_ROWS
    )
    defs = build_definitions(paths)
    ids = ("credit_scoring", "vendor_scores")

    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert {k.path[0] for k in keys} == set(ids)  # every key under its assessment's prefix
    groups = {graph.get(k).group_name for k in keys}
    assert groups == set(ids)
    assert all(graph.get(k).group_name == k.path[0] for k in keys)
    for names in (
        [s.name for s in defs.schedules],
        [s.name for s in defs.sensors if s.name != "impact_assets__lineage_sensor"],
        [j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")],
    ):
        assert len(names) == len(set(names))
        assert {n.split("__")[0] for n in names} == set(ids)  # one of each per assessment
    assert {s.name for s in defs.schedules} == {f"{i}__nightly" for i in ids}

    day = DAYS[0].isoformat()
    with dg.instance_for_test() as instance:
        assess(paths, instance, [day], "credit_scoring")
        assess(paths, instance, [day], "vendor_scores")
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        snapshots = conn.execute(
            "SELECT assessment_id, count(*) FROM impact.register_snapshots GROUP BY ALL ORDER BY 1"
        ).fetchall()
        entries = conn.execute(
            "SELECT s.assessment_id, count(*) FROM impact.register_entries e "
            "JOIN impact.register_snapshots s USING (snapshot_id) GROUP BY ALL ORDER BY 1"
        ).fetchall()
        schemas = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT table_schema FROM information_schema.tables "
                "WHERE table_schema NOT IN ('impact', 'main')"
            ).fetchall()
        }
    assert snapshots == [("credit_scoring", 1), ("vendor_scores", 1)]
    assert entries == [("credit_scoring", 16), ("vendor_scores", 1)]
    assert schemas == set(ids)  # each assessment's SQL models in a schema of its own
