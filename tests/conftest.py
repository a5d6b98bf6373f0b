"""Shared fixtures: a project whose state (DuckDB file, registry, landing batches) lives in tmp."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from impact_assets import ProjectPaths, discover_assessments
from impact_assets.cli import simulate_days, train_version

REPO = Path(__file__).resolve().parents[1]
DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """The repo's assessments and SQL, with two simulated days and a trained model in a tmp state dir."""
    paths = ProjectPaths.for_project(REPO, state_dir=tmp_path_factory.mktemp("state"))
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, DAYS)
    train_version(assessment)
    return paths


@pytest.fixture
def demo_paths(demo_state: ProjectPaths, tmp_path: Path) -> ProjectPaths:
    """A private copy of the demo state, so a test can write to it freely."""
    state = tmp_path / "state"
    shutil.copytree(demo_state.state_dir, state)
    return ProjectPaths.for_project(REPO, state_dir=state)


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    """An empty project folder with assessments/ and dbt_like_sql/ to fill in."""
    (tmp_path / "assessments").mkdir()
    (tmp_path / "dbt_like_sql").mkdir()
    return ProjectPaths.for_project(tmp_path)
