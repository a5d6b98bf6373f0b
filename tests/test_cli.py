"""The command line: validate (text and JSON), init (a scaffold that validates and runs), schema, wheel."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import dagster as dg
import duckdb
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from impact_assets import ProjectPaths
from impact_assets._scaffold import SAMPLE_DAYS
from impact_assets.cli import main
from impact_assets.spec import json_schema, markdown_reference

from ._servers import free_port, graphql, start_group, stop_group, stop_strays, wait_for
from .conftest import DEMO_SPEC, REPO, assess, spec_variant

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


def test_init_gives_a_project_that_validates_and_assesses_its_sample(tmp_path: Path):
    code, out = _run("init", "triage_access", project=tmp_path)
    assert code == 0 and "triage_access.yaml" in out
    for made in ("workspace.yaml", "definitions.py", "README.md", ".gitignore"):
        assert f"wrote {tmp_path / made}" in out
    spec_text = (tmp_path / "assessments" / "triage_access.yaml").read_text()
    assert (
        "# Change first:" in spec_text and "# column 'outcome': what really happened" in spec_text
    )
    code, out = _run("validate", project=tmp_path)
    assert code == 0, out
    assert _run("init", "triage_access", project=tmp_path)[0] == 1  # never overwrites
    assert _run("init", "Triage-Access", project=tmp_path)[0] == 1

    day = yaml.safe_load(spec_text)["partitions"]["start_date"]
    last = (dt.date.fromisoformat(day) + dt.timedelta(days=SAMPLE_DAYS - 1)).isoformat()
    assert (
        f"assess --assessment second --from {day} --to {last}"
        in _run("init", "second", project=tmp_path)[1]
    )
    paths = ProjectPaths.for_project(tmp_path)
    with dg.instance_for_test() as instance:
        assess(paths, instance, [day], "triage_access")
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        found = conn.execute(
            "SELECT value, status FROM impact.register_entries WHERE entry_id = 'decision_parity'"
        ).fetchall()
    # the sample's parity is 2/3 every day (see impact_assets._scaffold._sample)
    assert found == [(pytest.approx(2 / 3), "breach")]


def _loans_csv(path: Path) -> None:
    """Decisions under other names than the scaffold's: an id, a decision date, two groups, 0/1
    approvals and outcomes, a probability and a load time; 200 a day on 2026-03-01 and 03-02.

    Even ids are women, approved when the id is divisible by 4 (1 in 2); odd ids are men, approved
    unless the id is 1 modulo 8 (3 in 4): a demographic-parity ratio of 2/3 on each day.
    """
    rows = ["application_id,decision_date,sex,age_band,approved,repaid,prob,loaded_at"]
    for i in range(400):
        day = dt.date(2026, 3, 1 + i // 200)
        approved = int(i % 8 != 1) if i % 2 else int(i % 4 == 0)
        rows.append(
            f"A{i:04d},{day},{'MF'[i % 2 == 0]},{['<30', '30-50', '50+'][i % 3]},{approved},"
            f"{int(i % 5 > 0)},{(i % 7) / 7:.3f},{day} 22:00:00"
        )
    path.write_text("\n".join(rows) + "\n")


def test_init_from_a_csv_binds_its_columns_and_assesses_it(tmp_path: Path):
    csv = tmp_path / "loans.csv"
    _loans_csv(csv)
    project = tmp_path / "project"
    code, out = _run("init", "loans", "--from-csv", str(csv), project=project)
    assert code == 0, out
    assert "--from 2026-03-01 --to 2026-03-02" in out
    spec = yaml.safe_load((project / "assessments" / "loans.yaml").read_text())
    assert spec["partitions"]["start_date"] == "2026-03-01"
    assert spec["sources"]["loans_decisions"]["partition_column"] == "decision_date"
    assert spec["sources"]["loans_decisions"]["loaded_at_column"] == "loaded_at"
    bindings = spec["bindings"]
    assert (
        bindings["id_column"],
        bindings["label"],
        bindings["prediction"],
        bindings["score"],
    ) == (
        "application_id",
        "repaid",
        "approved",
        "prob",
    )
    assert bindings["sensitive_features"] == [
        {"name": "sex", "values": ["F", "M"]},
        {"name": "age_band", "values": ["30-50", "50+", "<30"]},
    ]
    assert (project / "data" / "loans" / "loans.csv").read_text() == csv.read_text()

    paths = ProjectPaths.for_project(project)
    with dg.instance_for_test() as instance:
        assess(paths, instance, ["2026-03-01"], "loans")
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        (value,) = conn.execute(
            "SELECT value FROM impact.register_entries WHERE entry_id = 'decision_parity'"
        ).fetchall()[0]
    assert value == pytest.approx(2 / 3)


def test_init_names_what_a_csv_lacks(tmp_path: Path):
    csv = tmp_path / "no_groups.csv"
    csv.write_text("id,day,outcome,score\n1,2026-03-01,1,0.5\n2,2026-03-01,0,0.2\n")
    code, out = _run("init", "x", "--from-csv", str(csv), project=tmp_path / "p")
    assert code == 1
    assert "no column can be the sensitive feature" in out and "id (BIGINT)" in out
    assert not (tmp_path / "p" / "assessments").exists()  # nothing written


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


def _runtime_closure() -> list:
    """The installed distributions impact-assets needs without any extra, itself excluded."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, object] = {}
    todo = [str(r) for r in distribution("impact-assets").requires or []]
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in found:
            found[name] = dist = distribution(name)
            todo += dist.requires or []
    return list(found.values())


@pytest.mark.slow
def test_the_built_wheel_runs_a_demo_day_without_any_extra(tmp_path: Path):
    """The wheel in a new environment holding only its runtime dependencies (linked from this one,
    file by file: no download), validating the demo and running one demo day as `make demo` does."""
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
    target = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in _runtime_closure():
        for file in dist.files or []:
            source = Path(dist.locate_file(file))
            if not source.is_relative_to(here) or not source.exists():
                continue  # scripts, data outside site-packages
            link = target / source.relative_to(here)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", str(wheel)],
        check=True,
    )
    probe = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u, impact_assets; print(impact_assets.__file__); "
            "print([m for m in ('pyspark', 'pyarrow', 'mlflow', 'dagster_postgres', 'pytest', 'selenium') if u.find_spec(m)])",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    assert probe[0].startswith(str(target))  # the installed wheel, not the checkout
    assert probe[1] == "[]"  # no extra, no test tool
    cli = env_dir / "bin" / "impact-assets"
    result = subprocess.run(
        [cli, "--project-dir", str(REPO), "validate", "--format", "json", str(DEMO_SPEC)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMPACT_ASSETS_", "DAGSTER_"))},
        "IMPACT_ASSETS_HOME": str(tmp_path / "state"),
    }
    demo = subprocess.run(
        [cli, "--project-dir", str(REPO), "demo", "--days", "1"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "release recommendation for model version 1: APPROVE" in demo.stdout
    assert "Impact register of income_screening" in demo.stdout
    console = demo.stdout + demo.stderr
    assert "warning" not in console.lower(), console[-3000:]


@pytest.mark.slow
def test_ui_serves_an_init_project_and_stops_within_seconds(tmp_path: Path):
    project = tmp_path / "project"
    assert _run("init", "triage", project=project)[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPACT_ASSETS_", "DAGSTER_"))}
    port = free_port()
    log = tmp_path / "ui.log"
    cli = Path(sys.executable).with_name("impact-assets")
    process = start_group([str(cli), "ui", "--port", str(port)], cwd=project, env=env, log=log)
    try:
        nodes = wait_for(
            lambda: graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"],
            180,
            "the project's assets",
            process,
            log,
        )
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {"triage/impact_register_snapshot", "triage/triage/triage_scored"} <= keys
        # the project's own instance, under its state folder
        assert (ProjectPaths.for_project(project).dagster_home / "dagster.yaml").exists()
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            stop_group(process)
        stop_strays(str(project))
    assert "Warning" not in log.read_text(), log.read_text()


def test_every_command_exits_0_1_or_2_by_one_rule(tmp_path: Path):
    """0: done; 1: done, and something failed or is not valid; 2: the command was used wrongly."""
    project = tmp_path / "project"
    assert _run("init", "triage", project=project)[0] == 0
    start = yaml.safe_load((project / "assessments" / "triage.yaml").read_text())["partitions"]
    day = dt.date.fromisoformat(start["start_date"])
    used_wrongly = {
        "an unknown option": ["validate", "--strict"],
        "an unknown command": ["asses"],
        "an unknown assessment": [
            "assess",
            "--assessment",
            "loans",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-01",
        ],
        "a malformed date": [
            "assess",
            "--assessment",
            "triage",
            "--from",
            "2026-3-1",
            "--to",
            "2026-03-01",
        ],
        "--to before --from": [
            "assess",
            "--assessment",
            "triage",
            "--from",
            str(day),
            "--to",
            str(day - dt.timedelta(days=1)),
        ],
        "a day before the partitions": [
            "assess",
            "--assessment",
            "triage",
            "--from",
            str(day - dt.timedelta(days=1)),
            "--to",
            str(day),
        ],
        "a folder without a workspace": ["--project-dir", str(tmp_path), "ui"],
        "retraining an unknown assessment": ["train", "--assessment", "loans"],
    }
    for what, args in used_wrongly.items():
        code, out = _run(*args, project=project)
        assert code == 2, (what, out)
        assert "Error:" in out and "Traceback" not in out, (what, out)
    assert (
        "no assessment 'loans' (assessments: triage)"
        in _run(*used_wrongly["an unknown assessment"], project=project)[1]
    )

    assert _run("--help")[0] == 0 and _run("validate", project=project)[0] == 0
    assert _run("init", "triage", project=project)[0] == 1  # exists: not overwritten
    sql = project / "dbt_like_sql" / "triage" / "triage_scored.sql"
    sql.write_text(sql.read_text().replace("SELECT\n", "SELECT (\n"))
    code, out = _run("validate", project=project)
    assert code == 1 and "SqlModelError" in out
