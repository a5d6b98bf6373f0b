"""The command line: validate (text and JSON), init (a scaffold that validates and runs), schema, wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import dagster as dg
import duckdb
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from impact_assets import ProjectPaths
from impact_assets.cli import main
from impact_assets.spec import json_schema, markdown_reference

from .conftest import DEMO_SPEC, REPO, assess, scaffold_batch, spec_variant

SCHEMA_FILE = REPO / "docs" / "assessment.schema.json"


def _run(*args: str, project: Path = REPO) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--project-dir", str(project), *args])
    return result.exit_code, result.output


def test_validate_accepts_the_demo_in_text_and_json():
    code, out = _run("validate", str(DEMO_SPEC))
    assert code == 0 and out.startswith("ok ") and "credit_scoring, 16 register entries" in out
    code, out = _run("validate", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["valid"] is True
    assert [r["id"] for r in report["results"]] == ["credit_scoring", "income_screening"]
    assert report["results"][0]["sql_models"] == ["stg_applications", "scored_applications"]


def test_the_clinical_example_validates():
    code, out = _run("validate", project=REPO / "examples" / "clinical_triage")
    assert code == 0 and "clinical_triage, 5 register entries" in out, out


def test_validate_names_what_is_wrong_and_where(tmp_path: Path):
    def unknown_key(data: dict) -> None:
        data["bindings"]["labell"] = "repaid"

    code, out = _run("validate", "--format", "json", str(spec_variant(tmp_path, unknown_key)))
    (result,) = json.loads(out)["results"]
    assert code == 1 and result["valid"] is False
    assert result["error"]["type"] == "SpecError" and "labell" in result["error"]["message"]
    assert result["error"]["context"]["field"] == "bindings.labell"
    assert int(result["error"]["context"]["line"]) > 1

    project = tmp_path / "project"
    (project / "assessments").mkdir(parents=True)
    (project / "dbt_like_sql").mkdir()
    _run("init", "broken", project=project)
    sql = project / "dbt_like_sql" / "broken" / "broken_scored.sql"
    sql.write_text(sql.read_text().replace("SELECT\n", "SELECT (\n"))  # an unclosed parenthesis
    code, out = _run("validate", project=project)
    assert code == 1 and "SqlModelError" in out and "broken_scored" in out


def test_validate_rejects_two_specs_with_one_id(tmp_path: Path):
    folder = tmp_path / "assessments"
    folder.mkdir()
    for name in ("a.yaml", "b.yaml"):
        (folder / name).write_text(DEMO_SPEC.read_text())
    code, out = _run("validate", "--format", "json", str(folder))
    results = json.loads(out)["results"]
    assert code == 1 and [r["valid"] for r in results] == [True, False]
    assert "is used by both" in results[1]["error"]["message"]


def test_init_scaffolds_an_assessment_that_validates_and_runs(tmp_path: Path):
    code, out = _run("init", "triage_access", project=tmp_path)
    assert code == 0 and "triage_access.yaml" in out
    code, out = _run("validate", project=tmp_path)
    assert code == 0, out
    assert _run("init", "triage_access", project=tmp_path)[0] == 1  # never overwrites
    assert _run("init", "Triage-Access", project=tmp_path)[0] == 1

    spec = yaml.safe_load((tmp_path / "assessments" / "triage_access.yaml").read_text())
    day = spec["partitions"]["start_date"]
    scaffold_batch(tmp_path, "triage_access", day)
    paths = ProjectPaths.for_project(tmp_path)
    with dg.instance_for_test() as instance:
        assess(paths, instance, [day], "triage_access")
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        found = conn.execute(
            "SELECT value, status FROM impact.register_entries WHERE entry_id = 'decision_parity'"
        ).fetchall()
    # the batch's parity is 2/3 (see scaffold_batch)
    assert found == [(pytest.approx(2 / 3), "breach")]


def test_the_published_json_schema_and_reference_are_current_and_check_the_demo():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()
    reference = (REPO / "docs" / "spec-reference.md").read_text()
    assert reference == markdown_reference()
    assert "|  |\n" not in reference  # every key has a meaning
    code, out = _run("schema")
    assert code == 0 and json.loads(out) == json_schema()
    validator = jsonschema.Draft202012Validator(json_schema())
    demo = yaml.safe_load(DEMO_SPEC.read_text())
    assert list(validator.iter_errors(demo)) == []
    demo["register"][0]["thresholds"]["direction"] = "sideways"
    assert [e.validator for e in validator.iter_errors(demo)] == ["enum"]


@pytest.mark.slow
def test_the_built_wheel_installs_and_validates_the_demo(tmp_path: Path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("impact_assets-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir)  # no pip of its own: this environment's pip installs into it
    python = env_dir / "bin" / "python"
    # the wheel alone in the new environment; its dependencies seen from this one's site-packages
    target = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (target / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", str(wheel)],
        check=True,
    )
    where = subprocess.run(
        [python, "-c", "import impact_assets; print(impact_assets.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(target))  # the installed wheel, not the checkout
    result = subprocess.run(
        [
            env_dir / "bin" / "impact-assets",
            "--project-dir",
            str(REPO),
            "validate",
            "--format",
            "json",
            str(DEMO_SPEC),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True
