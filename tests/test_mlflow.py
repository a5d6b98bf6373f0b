"""MLflow's model registry in place of the local folder, against a local sqlite-backed MLflow store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from impact_assets import (
    ProjectPaths,
    assessment_job_name,
    build_definitions,
    discover_assessments,
    release_job_name,
)
from impact_assets.cli import simulate_days, train_version
from impact_assets.modeling import MlflowModelRegistry
from impact_assets.pipeline import sign_off_release

from .conftest import DAYS, DEMO_SPEC, alone

pytest.importorskip("mlflow")


@pytest.fixture
def mlflow_paths(tmp_path: Path) -> ProjectPaths:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["model"]["registry"]["mlflow"] = {
        "model_name": "credit_scoring_logreg",
        "tracking_uri": "sqlite:///{state_dir}/mlflow.db",
    }
    return alone(spec, tmp_path / "state")


def test_assessment_scores_decides_and_promotes_through_mlflow(mlflow_paths: ProjectPaths):
    (assessment,) = discover_assessments(mlflow_paths)
    registry = assessment.registry
    assert isinstance(registry, MlflowModelRegistry)
    assert registry.versions() == []
    day = DAYS[0].isoformat()
    simulate_days(assessment, [DAYS[0]])
    assert train_version(assessment) == "1"
    assert registry.get("1").metadata["features"][:2] == ["checking_status", "duration_months"]
    # a sqlite store keeps run artifacts in the state folder, not in the working directory
    artifacts = mlflow_paths.state_dir / "mlflow-artifacts"
    assert list(artifacts.rglob("reference.parquet")) and list(artifacts.rglob("MLmodel"))

    defs = build_definitions(mlflow_paths)
    sensor = next(s for s in defs.sensors if s.name == "credit_scoring__model_version_sensor")
    with dg.instance_for_test() as instance:
        tick = sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=None, repository_def=defs.get_repository_def()
            )
        )
        assert [r.tags["impact_assets/model_version"] for r in tick.run_requests] == ["1"]
        assert (
            defs.resolve_job_def(assessment_job_name("credit_scoring"))
            .execute_in_process(partition_key=day, instance=instance)
            .success
        )
        assert (
            defs.resolve_job_def(release_job_name("credit_scoring"))
            .execute_in_process(partition_key=day, instance=instance)
            .success
        )
    with duckdb.connect(str(mlflow_paths.database), read_only=True) as conn:
        versions = conn.execute(
            "SELECT DISTINCT model_version FROM credit_scoring.predictions"
        ).fetchall()
        decision = conn.execute(
            "SELECT model_version, decision FROM impact.release_decisions"
        ).fetchall()
    assert versions == [("1",)]
    assert decision == [("1", "approve")]
    # the demo's policy wants two sign-offs: the recommendation waits for them in MLflow too
    assert registry.status("1") == {"status": "awaiting_sign_off"}
    assert registry.approved() is None
    with duckdb.connect(str(mlflow_paths.database)) as conn:
        for signer in ("Dana Okafor", "Tomás Ibarra"):
            state = sign_off_release(
                conn, assessment, "1", signer=signer, rationale="evidence reviewed"
            )
    assert state.state == "approved"
    assert registry.status("1") == {"status": "approved"}
    assert registry.approved() == "1"
