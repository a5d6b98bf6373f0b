"""The Dagster Component in a throwaway dg project: `dg scaffold defs`, `dg check defs`, `dg launch`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from impact_assets.cli import DAGSTER_YAML

pytestmark = pytest.mark.slow
COMPONENT = "impact_assets.component.ImpactAssessmentComponent"
PYPROJECT = """\
[project]
name = "risk_project"
version = "0.1.0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "risk_project"
"""
DEFINITIONS = """\
from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(project_root=Path(__file__).parents[2])
"""


def _dg(project: Path, env: dict[str, str], *args: str) -> str:
    dg_cli = Path(sys.executable).with_name("dg")
    result = subprocess.run(
        [str(dg_cli if dg_cli.exists() else shutil.which("dg")), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"dg {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_an_assessment_declared_in_a_defs_yaml_scaffolds_loads_and_runs(tmp_path: Path):
    project = tmp_path / "risk_project"
    package = project / "src" / "risk_project"
    (package / "defs").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    (package / "defs" / "__init__.py").write_text("")
    (package / "definitions.py").write_text(DEFINITIONS)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPACT_ASSETS_")},
        "PYTHONPATH": str(project / "src"),
        "DAGSTER_HOME": str(home),
    }

    _dg(project, env, "scaffold", "defs", COMPONENT, "credit_risk")
    folder = package / "defs" / "credit_risk"
    declared = yaml.safe_load((folder / "defs.yaml").read_text())
    assert declared == {
        "type": COMPONENT,
        "attributes": {"assessments": "credit_risk.yaml", "sql_dir": "sql"},
    }
    assert (folder / "sql" / "credit_risk" / "credit_risk_scored.sql").exists()

    day = yaml.safe_load((folder / "credit_risk.yaml").read_text())["partitions"]["start_date"]
    assert (project / "data" / "credit_risk" / "sample.csv").exists()
    assert "All definitions loaded successfully" in _dg(project, env, "check", "defs")
    _dg(project, env, "launch", "--job", "credit_risk__assessment", "--partition", day)

    with duckdb.connect(str(project / ".impact" / "impact_assets.duckdb"), read_only=True) as conn:
        found = conn.execute(
            "SELECT value, status FROM impact.register_entries WHERE entry_id = 'decision_parity'"
        ).fetchall()
    # the sample's parity is 2/3 every day (see impact_assets._scaffold._sample)
    assert found == [(pytest.approx(2 / 3), "breach")]
