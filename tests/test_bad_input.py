"""Bad data at run time: each case names what is wrong and where, and loses nothing already written.

Every case starts from a project whose 2026-03-02 partition was assessed cleanly, then runs a
partition with one defect. The register history, governance actions and runs written before must
be intact afterwards. (Spec, SQL and expectation mistakes found when definitions load are in
test_spec.py, test_sql.py and test_quality.py; faults of the database and processes in test_faults.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from click.testing import CliRunner

from impact_assets import ProjectPaths
from impact_assets.cli import main

from ._servers import free_port
from .conftest import (
    DAYS,
    DEMO_SPEC,
    VENDOR_ROWS,
    VENDOR_SQL,
    alone,
    assess,
    history,
    run_partition,
    step_failure,
    vendor_project,
)

GOOD_DAY, BAD_DAY = "2026-03-02", "2026-03-04"
NO_DEFAULTS = "quality: {defaults: false}\n"


def _rows(*rows: str) -> str:
    """VENDOR_ROWS plus rows ``id,region,outcome,score`` of BAD_DAY (loaded on time)."""
    extra = [
        f"{i},{BAD_DAY},{region},{outcome},{score},2026-03-05 01:00"
        for i, row in enumerate(rows, 100)
        for region, outcome, score in [row.split(",")]
    ]
    return VENDOR_ROWS + "\n".join(extra) + ("\n" if extra else "")


BALANCED = ("north,1,0.9", "north,0,0.2", "south,1,0.8", "south,0,0.3")


@dataclass(frozen=True)
class Case:
    """A defect and what the user must be told.

    ``failure``: substrings of the failed step's message (the run fails; otherwise it succeeds);
    either way the register entry is ``insufficient_data`` and ``register`` holds substrings of its
    reason.
    """

    rows: str = _rows(*BALANCED)
    quality: str = NO_DEFAULTS
    sql: str = VENDOR_SQL
    failure: tuple[str, ...] = ()
    register: tuple[str, ...] = ()
    failed_check: str | None = None


CASES = {
    "non-binary label": Case(
        rows=_rows("north,2,0.9", "north,0,0.2", "south,1,0.8", "south,0,0.3"),
        register=("'outcome' must be binary", "partition 2026-03-04 has 3 distinct values"),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "non-binary decision": Case(
        sql=VENDOR_SQL.replace("CAST(score >= 0.5 AS INTEGER)", "CAST(score * 3 AS INTEGER)"),
        register=("'decision' must be binary",),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "label as yes/no text": Case(
        rows=_rows("north,yes,0.9", "north,no,0.2", "south,yes,0.8", "south,no,0.3"),
        register=(
            "'outcome' takes the values ['no', 'yes'] in partition 2026-03-04, none of which is the positive label 1",
        ),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "NULL label": Case(
        rows=_rows("north,,0.9", "north,0,0.2", "south,1,0.8", "south,0,0.3"),
        register=("1 rows of partition 2026-03-04 have NULL in 'outcome'",),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "NULL label, caught by the derived blocking check": Case(
        rows=_rows("north,,0.9", "north,0,0.2", "south,1,0.8", "south,0,0.3"),
        quality="",
        register=(
            "not evaluated: failed blocking data-quality checks: vendor_decisions.outcome_values_are_not_null",
        ),
        failed_check="outcome_values_are_not_null",
    ),
    "score above 1": Case(
        rows=_rows("north,1,1.7", "north,0,0.2", "south,1,0.8", "south,0,0.3"),
        register=("1 rows of partition 2026-03-04 have a score outside [0, 1] in 'score'",),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "negative score, caught by the derived blocking check": Case(
        rows=_rows("north,1,-0.4", "north,0,0.2", "south,1,0.8", "south,0,0.3"),
        quality="",
        register=("vendor_decisions.score_values_are_between",),
        failed_check="score_values_are_between",
    ),
    "a sensitive feature with one group only": Case(
        rows=_rows("north,1,0.9", "north,0,0.2", "north,1,0.8", "north,0,0.3"),
        register=("(1 of 1 in the partition: north;", "declared but absent: south)"),
    ),
    "every group below the minimum size": Case(
        rows=_rows("north,1,0.9", "south,0,0.3"),
        register=("suppressed below the minimum group size: north, south;",),
    ),
    "empty partition": Case(
        rows=VENDOR_ROWS,
        register=("partition 2026-03-04 of", "has no rows"),
        failed_check="fairness_inputs_meet_the_contract",
    ),
    "empty partition, caught by the derived row-count check": Case(
        rows=VENDOR_ROWS,
        quality="",
        register=("vendor_decisions.row_count_is_between",),
        failed_check="row_count_is_between",
    ),
    "a SQL model failing on this day's data": Case(
        rows=_rows("north,1,0.9", "north,0,0.2", "south,1,0.8", "south,0,0.3").replace(
            f"100,{BAD_DAY}", f"x1,{BAD_DAY}"
        ),
        sql=VENDOR_SQL.replace("SELECT id,", "SELECT CAST(id AS INTEGER) AS id,"),
        failure=(
            "partition 2026-03-04 is not assessed: SQL model 'vendor_decisions' fails on the day's data",
            "CSV Error on Line: 7",
            "vendor_decisions.sql",
        ),
        register=("vendor_decisions.data_is_readable", "CSV Error on Line: 7"),
    ),
}


@pytest.fixture(scope="module")
def assessed_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vendor project whose GOOD_DAY was assessed cleanly (its data, SQL and state)."""
    root = tmp_path_factory.mktemp("assessed")
    (root / "assessments").mkdir()
    (root / "dbt_like_sql").mkdir()
    paths = vendor_project(ProjectPaths.for_project(root), _rows(*BALANCED))
    with dg.instance_for_test() as instance:
        assert run_partition(paths, instance, GOOD_DAY).success
    return root


@pytest.fixture
def assessed(assessed_once: Path, tmp_path: Path) -> ProjectPaths:
    return ProjectPaths.for_project(shutil.copytree(assessed_once, tmp_path / "project"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_data_is_named_and_loses_nothing(assessed: ProjectPaths, name: str):
    case = CASES[name]
    before = history(assessed.database)
    vendor_project(assessed, case.rows, quality=case.quality, sql=case.sql)
    with dg.instance_for_test() as instance:
        result = run_partition(assessed, instance, BAD_DAY)
    after = history(assessed.database)
    for table, rows in before.items():  # nothing written before is lost or changed
        assert set(rows) <= set(after[table]), table
    if case.failure:
        assert not result.success
        message = step_failure(result).step_failure_data.error.message
        for text in case.failure:
            assert text in message
    else:
        assert result.success
    if case.failed_check:
        failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
        assert case.failed_check in failed
    with duckdb.connect(str(assessed.database), read_only=True) as conn:
        ((status, reason),) = conn.execute(
            "SELECT e.status, e.reason FROM impact.register_entries e JOIN impact.register_snapshots s USING (snapshot_id) WHERE s.partition_key = ?",
            [BAD_DAY],
        ).fetchall()
    assert status == "insufficient_data"
    for text in case.register:
        assert text in reason


def test_a_partition_outside_the_assessment_is_refused_by_the_command_line(
    assessed: ProjectPaths,
):
    before = history(assessed.database)
    runner = CliRunner()
    base = ["--project-dir", str(assessed.project_dir), "assess", "--assessment", "vendor_scores"]
    done = runner.invoke(main, [*base, "--from", "2026-02-27", "--to", "2026-03-02"])
    assert done.exit_code != 0
    assert "2026-02-27 is before the first partition of vendor_scores (2026-03-01" in done.output
    assert history(assessed.database) == before


HOSTILE_COLUMN = 'région "x"; DROP TABLE impact.runs; --'
HOSTILE_GROUPS = ("nord'; DROP TABLE impact.runs; --", 'sü"d')


def test_hostile_column_and_group_names_are_data_not_sql(project: ProjectPaths):
    north, south = HOSTILE_GROUPS
    rows = (
        VENDOR_ROWS.replace("region", "sensitive_area")
        .replace(",north,", f',"{north}",')
        .replace(",south,", f',"{south.replace(chr(34), chr(34) * 2)}",')
    )
    sql = VENDOR_SQL.replace(
        "region", f'sensitive_area AS "{HOSTILE_COLUMN.replace(chr(34), chr(34) * 2)}"'
    )
    paths = vendor_project(project, rows, sql=sql)
    spec = paths.assessments_dir / "vendor.yaml"
    quoted = json.dumps(HOSTILE_COLUMN)
    text = spec.read_text().replace(
        "sensitive_features: [{name: region, values: [north, south]}]",
        f"sensitive_features: [{{name: {quoted}, values: {json.dumps(list(HOSTILE_GROUPS))}}}]",
    )
    spec.write_text(text.replace("feature_set: region", f"feature_set: {quoted}"))
    with dg.instance_for_test() as instance:
        assert run_partition(paths, instance, GOOD_DAY).success
    with duckdb.connect(str(paths.database), read_only=True) as conn:
        groups = conn.execute(
            "SELECT group_key, value FROM impact.group_metrics WHERE feature_set = ? AND metric = 'selection_rate' ORDER BY group_key",
            [HOSTILE_COLUMN],
        ).fetchall()
        ((value, status),) = conn.execute(
            "SELECT value, status FROM impact.register_entries"
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM impact.runs").fetchall() == [(1,)]
    # north approves 2/2 and south 1/2 on GOOD_DAY, as in the plain vendor project
    assert groups == [(north, 1.0), (south, 0.5)]
    assert (value, status) == (0.5, "breach")


@pytest.fixture(scope="module")
def demo_assessed(demo_state: ProjectPaths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's state after one clean assessment of its first day."""
    state = tmp_path_factory.mktemp("demo") / "state"
    shutil.copytree(demo_state.state_dir, state)
    with dg.instance_for_test() as instance:
        assess(alone(DEMO_SPEC, state), instance, DAYS[:1])
    return state


def _break_metadata(version: Path) -> None:
    (version / "metadata.json").write_text('{"features": ["duration_months",')


def _add_a_feature(version: Path) -> None:
    metadata = json.loads((version / "metadata.json").read_text())
    metadata["features"].append("salary")
    (version / "metadata.json").write_text(json.dumps(metadata))


MODEL_DEFECTS = {
    "a model artifact that does not load": (
        lambda version: (version / "model.joblib").write_bytes(b"\x80\x04 truncated pickle"),
        ("model version 1 in", "/models/credit_scoring/1 could not be loaded: "),
    ),
    "model metadata that is not JSON": (
        _break_metadata,
        ("the model registry file", "/models/credit_scoring/1/metadata.json is not readable JSON"),
    ),
    "a model whose features do not match the data": (
        _add_a_feature,
        (
            "model version 1 needs features ['salary'] that credit_scoring.stg_applications does not have",
        ),
    ),
}


@pytest.mark.parametrize("name", list(MODEL_DEFECTS))
def test_a_model_that_cannot_score_is_named_and_loses_nothing(
    demo_assessed: Path, tmp_path: Path, name: str
):
    state = shutil.copytree(demo_assessed, tmp_path / "state")
    paths = alone(DEMO_SPEC, state)
    before = history(paths.database)
    defect, expected = MODEL_DEFECTS[name]
    defect(paths.models_dir / "credit_scoring" / "1")
    with dg.instance_for_test() as instance:
        result = run_partition(paths, instance, str(DAYS[1]), "credit_scoring")
    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "credit_scoring__predictions"
    for text in expected:
        assert text in failure.step_failure_data.error.message
    assert history(paths.database) == before


def _unreachable_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    return f"127.0.0.1', port={url.rsplit(':', 1)[1]}"


def _missing_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(tmp_path / "nowhere" / "openlineage.yml"))
    return (
        f"OPENLINEAGE_CONFIG names {tmp_path / 'nowhere' / 'openlineage.yml'}, which does not exist"
    )


def _unknown_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    config = tmp_path / "openlineage.yml"
    config.write_text("transport:\n  type: carrier_pigeon\n")
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    return f"the OpenLineage transport configured in {config} cannot be used: ImportError"


LINEAGE_DEFECTS = {
    "a lineage backend URL where nothing listens": _unreachable_url,
    "OPENLINEAGE_CONFIG naming a missing file": _missing_config,
    "a lineage transport of an unknown type": _unknown_transport,
}


@pytest.mark.parametrize("name", list(LINEAGE_DEFECTS))
def test_lineage_pointing_nowhere_keeps_the_events_and_says_why(
    assessed: ProjectPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    expected = LINEAGE_DEFECTS[name](tmp_path, monkeypatch)
    runner = CliRunner()
    project = ["--project-dir", str(assessed.project_dir)]
    days = ["--from", "2026-03-03", "--to", "2026-03-03"]
    done = runner.invoke(main, [*project, "assess", "--assessment", "vendor_scores", *days])
    assert done.exit_code == 0, done.output  # the assessment does not depend on lineage
    assert "OpenLineage: 0 lineage events delivered" in done.output
    assert expected in done.output
    again = runner.invoke(main, [*project, "lineage"])
    assert again.exit_code == 1 and expected in again.output
    pending = int(again.output.split("pending: ")[1].split()[0])
    assert pending > 0 and f"pending: {pending} events in 1 runs" in again.output


def _day_file(project: Path, day: str, outcome: tuple[str, str] = ("0", "1")) -> Path:
    """One day's batch for the scaffold of ``impact-assets init triage``, in a file of its own.

    As in the scaffold's sample, group a gets 2 of 5 approved and group b 3 of 5 (parity 2/3);
    ``outcome`` spells the unfavourable and favourable outcome.
    """
    rows = ["case_id,day,group,outcome,score,loaded_at"] + [
        f"{day.replace('-', '')}{i:03d},{day},{'ab'[i % 2]},{outcome[i % 3 > 0]},{(i % 10) / 10:.1f},{day} 23:00"
        for i in range(200)
    ]
    path = project / "data" / "triage" / f"{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def test_one_bad_day_stays_one_bad_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = tmp_path / "project"
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    def cli(*args: str):
        return CliRunner().invoke(main, ["--project-dir", str(project), *args])

    assert cli("init", "triage").exit_code == 0  # with a sample of healthy days
    start = yaml.safe_load((project / "assessments" / "triage.yaml").read_text())["partitions"]
    first, bad, last = (
        (dt.date.fromisoformat(start["start_date"]) + dt.timedelta(days=d)).isoformat()
        for d in range(3)
    )
    bad_file = _day_file(project, bad, outcome=("no", "yes"))

    result = cli("assess", "--assessment", "triage", "--from", first, "--to", last)
    assert result.exit_code == 1
    days = [line.split(" (run ")[0] for line in result.stdout.splitlines() if "partition" in line]
    assert days == [
        f"[triage] partition {first} (1/3): ok",
        f"[triage] partition {bad} (2/3): FAILED",
        f"[triage] partition {last} (3/3): ok",
    ]
    assert result.stderr.splitlines() == [
        f"    triage__triage__triage_scored: partition {bad} is not assessed: source 'triage_decisions': DuckDB cannot read the file {bad_file}",
        "  Conversion Error: CSV Error on Line: 2",
        f"  Original Line: {bad.replace('-', '')}000,{bad},a,no,0.0,{bad} 23:00",
        '  Error when converting column "outcome". Could not convert string "no" to \'BIGINT\'',
        "Its register entries are insufficient_data with this reason; other days are assessed as usual.",
        f"What to do: correct or replace {bad_file}, then assess {bad} again.",
    ]

    def register() -> dict[str, tuple[int, str, str]]:
        paths = ProjectPaths.for_project(project)
        with duckdb.connect(str(paths.database), read_only=True) as conn:
            rows = conn.execute(
                "SELECT s.partition_key, s.snapshot_version, e.status, e.reason FROM impact.register_entries e "
                "JOIN impact.register_snapshots s USING (snapshot_id) "
                "QUALIFY row_number() OVER (PARTITION BY s.partition_key ORDER BY s.snapshot_version DESC) = 1"
            ).fetchall()
        return {day: (version, status, reason) for day, version, status, reason in rows}

    found = register()
    assert {day: found[day][:2] for day in found} == {
        first: (1, "breach"),
        bad: (1, "insufficient_data"),
        last: (1, "breach"),
    }
    assert "triage_decisions.data_is_readable" in found[bad][2]
    assert str(bad_file) in found[bad][2] and 'Could not convert string "no"' in found[bad][2]

    # healthy days re-run as usual beside the bad file
    for day in (first, last):
        again = cli("assess", "--assessment", "triage", "--from", day, "--to", day)
        assert again.exit_code == 0 and again.stderr == "", again.output
    assert {day: register()[day][:2] for day in (first, last)} == {
        first: (2, "breach"),
        last: (2, "breach"),
    }

    # the corrected file is read again and its day assessed
    _day_file(project, bad)
    fixed = cli("assess", "--assessment", "triage", "--from", bad, "--to", bad)
    assert fixed.exit_code == 0, fixed.output
    version, status, reason = register()[bad]
    assert (version, status) == (2, "breach") and "2/3" not in reason
