"""What must never leave the process: raw values of sensitive columns and secrets.

A canary value is planted in a sensitive column (a value nobody declared, in a group of one row) and
in the secrets of the environment; after a full run with lineage delivered, it must be absent from
every DuckDB result table, the Dagster event log, the files the project wrote (reports, lineage,
cursor) and the command's output.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from click.testing import CliRunner
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import serialize_value

from impact_assets import ProjectPaths, SpecError
from impact_assets.cli import main
from impact_assets.fairness import OTHER_GROUP
from impact_assets.spec import load_spec

from ._servers import Backend
from .conftest import VENDOR_ROWS, spec_variant, vendor_project

CANARY_VALUE = "Canary-Lake-7f3a"
CANARY_SECRET = "sk-canary-5e1b9c"


def _everything_written(paths: ProjectPaths, home: Path) -> dict[str, str]:
    """Text of every result table, every event of every run, every file under the state folder."""
    found: dict[str, str] = {}
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'impact'"
        ).fetchall()
        for (table,) in tables:
            found[f"impact.{table}"] = str(
                conn.execute(f'SELECT * FROM impact."{table}"').fetchall()
            )
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run in instance.get_runs():
            found[f"event log of {run.run_id}"] = serialize_value(instance.all_logs(run.run_id))
    for file in paths.state_dir.rglob("*"):
        if file.is_file() and file.suffix in {".md", ".html", ".json", ".jsonl", ".yaml", ".txt"}:
            found[str(file)] = file.read_text(errors="replace")
    return found


def test_raw_sensitive_values_and_secrets_stay_out_of_results_logs_lineage_and_reports(
    project: ProjectPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    rows = VENDOR_ROWS + f"9,2026-03-02,{CANARY_VALUE},1,0.9,2026-03-03 01:00\n"
    paths = vendor_project(project, rows)
    backend = Backend()
    backend.start()
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{backend.port}")
    monkeypatch.setenv("OPENLINEAGE_API_KEY", CANARY_SECRET)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", CANARY_SECRET)
    try:
        done = CliRunner().invoke(
            main,
            [
                *("--project-dir", str(paths.project_dir), "assess"),
                *("--assessment", "vendor_scores", "--from", "2026-03-02", "--to", "2026-03-02"),
            ],
        )
    finally:
        backend.stop()
    assert done.exit_code == 0, done.output
    # the run saw the canary: the undeclared region fails its check, and lineage was delivered with the key
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        failed = conn.execute(
            "SELECT check_name, unexpected_count FROM impact.quality_results WHERE NOT success"
        ).fetchall()
    assert ("region_values_are_in_set", 1) in failed
    assert backend.received and set(backend.authorizations) == {f"Bearer {CANARY_SECRET}"}

    written = _everything_written(paths, home)
    assert any("report.html" in name for name in written)
    assert any(name.startswith("event log") for name in written)
    written["command output"] = done.output
    written["events the backend received"] = str(backend.received)
    leaks = [
        f"{what} reached {where}"
        for where, text in written.items()
        for what, canary in (("a raw sensitive value", CANARY_VALUE), ("a secret", CANARY_SECRET))
        if canary in text
    ]
    assert leaks == []
    # the canary's row is counted, in a group of its own that names no value
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        other = conn.execute(
            "SELECT n, suppressed FROM impact.group_metrics WHERE feature_set = 'region' AND group_key = ? AND metric = 'count'",
            [OTHER_GROUP],
        ).fetchall()
    assert other == [(1, True)]


def test_credentials_in_a_tracking_uri_are_refused_without_echoing_them(tmp_path: Path):
    def put_password_in_the_uri(data: dict) -> None:
        data["model"]["registry"]["mlflow"] = {
            "tracking_uri": f"https://risk:{CANARY_SECRET}@mlflow.lender.example"
        }

    path = spec_variant(tmp_path, put_password_in_the_uri)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "credentials do not belong in the spec" in info.value.message
    assert "MLFLOW_TRACKING_USERNAME" in info.value.message
    assert CANARY_SECRET not in str(info.value)
    assert yaml.safe_load(path.read_text())  # the file itself is the user's, left as it was
