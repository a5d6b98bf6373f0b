"""The impact report: sections, embedded plots, and its place in the UI metadata and on disk."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from impact_assets import ProjectPaths, build_definitions, discover_assessments, release_job_name
from impact_assets._markdown import human_number
from impact_assets.cli import main, simulate_days, train_version
from impact_assets.pipeline import sign_off_release
from impact_assets.register import STATUSES
from impact_assets.report import build_report
from impact_assets.storage import connect

from .conftest import DAYS, DEMO_SPEC, REPO, alone, assess

SECTIONS = [
    "At a glance",
    "What the model is for",
    "Impact register",
    "Governance actions not yet resolved",
    "Release recommendation, sign-off and impact level",
    "Outcomes by group",
    "Outcomes that arrive late",
    "Disparities against their thresholds",
    "Drift",
    "KPIs and cost-benefit by group",
    "Scenarios",
    "Causal estimates",
    "Versions and lineage",
]


def test_the_demo_report_has_every_section_and_embeds_its_plots(demo_paths: ProjectPaths):
    day = DAYS[0].isoformat()
    with dg.instance_for_test() as instance:
        assess(demo_paths, instance, [day])
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["credit_scoring", "impact_report"])
        )
    metadata = event.asset_materialization.metadata
    html_path = metadata["impact_assets/html"].value
    assert html_path == str(
        demo_paths.state_dir / "reports" / "credit_scoring" / day / "model-1" / "report.html"
    )
    page = Path(html_path).read_text(encoding="utf-8")
    markdown = metadata["impact_assets/report"].value
    assert re.findall(r"<h2>(.*?)</h2>", page) == SECTIONS
    assert re.findall(r"^## (.*)$", markdown, flags=re.MULTILINE) == SECTIONS
    images = re.findall(r'<img src="([^"]*)"', page)
    # rates and true positive rates by group, disparities, drift, cost-benefit, the threshold sweep
    # (the causal estimate has no plot: the demo's rollout comes after these days)
    assert len(images) == metadata["impact_assets/plots"].value == 6
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # the page shows the Markdown's plots, in its order
    assert images == re.findall(r"!\[[^\]]*\]\((data:image/png;base64,[^)]+)\)", markdown)
    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for src in images)
    assert not re.search(r"(src|href)=['\"]?https?:", page)  # self-contained: nothing fetched
    assert "approval_parity_sex" in page and "Impact level <strong>" in page
    assert "female×60+" in page  # groups below the minimum size are shown, as suppressed
    assert "Applicants who are not foreign workers are a small group" in page


WEEK = [dt.date(2026, 3, 2) + dt.timedelta(days=k) for k in range(7)]
STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}


def _register_rows(markdown: str, section: str = "## Impact register") -> list[list[str]]:
    """The cells of the first table under ``section``."""
    table = markdown.split(section, 1)[1].split("\n\n| ", 1)[1].split("\n\n", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split(" | ")]
        for line in ("| " + table).splitlines()[2:]
    ]


@pytest.fixture(scope="module")
def week_and_rollback(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A week assessed with version 1, signed off; an unfair version 2 on the last day, rolled back."""
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["fairness"]["bootstrap"]["resamples"] = 50  # intervals are not what this test reads
    spec["analytics"]["sensitivity"]["repeats"] = 2
    spec["simulation"]["rows_per_day"] = 1000
    paths = alone(spec, tmp_path_factory.mktemp("week") / "state")
    (assessment,) = discover_assessments(paths)
    simulate_days(assessment, WEEK, today=WEEK[-1] + dt.timedelta(days=30))
    train_version(assessment)
    defs = build_definitions(paths)
    release = defs.resolve_job_def(release_job_name("credit_scoring"))
    last = WEEK[-1].isoformat()
    with dg.instance_for_test() as instance:
        assess(paths, instance, WEEK)
        assert release.execute_in_process(partition_key=last, instance=instance).success
        with connect(paths.database) as conn:
            for signer in ("Dana Okafor", "Tomás Ibarra"):
                sign_off_release(conn, assessment, "1", signer=signer, rationale="reviewed")
        train_version(assessment, unfair=True)
        assess(paths, instance, [last])
        release.execute_in_process(partition_key=last, instance=instance, raise_on_error=False)
    with connect(paths.database) as conn:  # the report as it reads after the rollback
        build_report(conn, assessment, last, paths.state_dir / "reports")
    return paths


def _report(paths: ProjectPaths, version: str, day: dt.date = WEEK[-1]) -> str:
    folder = paths.state_dir / "reports" / "credit_scoring" / day.isoformat() / f"model-{version}"
    return (folder / "report.md").read_text(encoding="utf-8")


def test_the_report_starts_with_the_serving_version_and_what_broke(week_and_rollback):
    markdown = _report(week_and_rollback, "2")
    glance = markdown.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert markdown.index("## At a glance") < markdown.index("## What the model is for")
    assert "**Serving: model version 1**, approved since" in glance
    assert "signed off by Dana Okafor, Tomás Ibarra (2 of 2)" in glance
    assert (
        "This report is of model version 2, **rolled back**: approval_parity_sex is breach"
        in glance
    )
    assert re.search(r"\*\*\d+ breach\*\* \(1 rollback[^)]*\): `approval_parity_sex`", glance)
    assert (
        "`approval_parity_sex` pass → breach" in glance
    )  # against version 1's snapshot of the day
    assert "Actions not yet resolved:" in glance
    # entries by severity: breaches first, and among them the rollback guardrail first
    rows = _register_rows(markdown)
    ranks = [STATUS_RANK[r[1]] for r in rows]
    assert ranks == sorted(ranks) and rows[0][:2] == ["approval_parity_sex", "breach"]
    assert rows[0][6:8] == ["fair-lending@lender.example", "rollback"]  # owner and action shown


def test_the_report_shows_a_weeks_trend_and_both_versions_side_by_side(week_and_rollback):
    rows = {r[0]: r for r in _register_rows(_report(week_and_rollback, "1"))}
    # the trend is version 1's newest value of each day, as the snapshots hold it
    with connect(week_and_rollback.database, read_only=True) as conn:
        values = conn.execute(
            """SELECT arg_max(e.value, s.snapshot_version) FROM impact.register_entries e
               JOIN impact.register_snapshots s USING (snapshot_id)
               WHERE e.entry_id = 'approval_parity_sex' AND s.model_version = '1'
               GROUP BY s.partition_key ORDER BY s.partition_key"""
        ).fetchall()
    assert len(values) == len(WEEK)
    assert rows["approval_parity_sex"][5] == " · ".join(human_number(v) for (v,) in values)
    side = _register_rows(_report(week_and_rollback, "2"), "**Model versions side by side")
    (parity,) = [r for r in side if r[0] == "approval_parity_sex"]
    assert parity[1].startswith("pass: ") and parity[2].startswith("breach: ")
    assert len(side) == len(rows)  # every entry, under each version


def test_no_report_shows_a_machine_path_a_placeholder_or_scientific_notation(week_and_rollback):
    reports = sorted((week_and_rollback.state_dir / "reports").rglob("report.*"))
    assert len(reports) == 2 * (len(WEEK) + 1)
    for path in reports:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            text = re.sub(r"data:image/png;base64,[^\"')]+", "", text)
        assert str(week_and_rollback.state_dir) not in text, path
        assert str(REPO) not in text and "/tmp/" not in text, path
        assert "{state_dir}" not in text and "{project_dir}" not in text, path
        assert not re.search(r"\d\.\d+e[+-]\d", text), path
    assert "net_benefit_per_decision (DM)" in reports[0].read_text(encoding="utf-8")


def _register_cli(paths: ProjectPaths, *extra: str) -> str:
    env = {
        "IMPACT_ASSETS_HOME": str(paths.state_dir),
        "IMPACT_ASSETS_ASSESSMENTS_DIR": str(paths.assessments_dir),
    }
    args = ["--project-dir", str(paths.project_dir), "register", "--assessment", "credit_scoring"]
    done = CliRunner().invoke(main, [*args, *extra], env=env)
    assert done.exit_code == 0, done.output
    return done.output


def test_the_printed_register_heads_every_day_with_the_serving_version(week_and_rollback):
    out = _register_cli(week_and_rollback)
    assert (
        "Impact register of credit_scoring: model version 1 (serving) where it was assessed" in out
    )
    (versions,) = [
        line.split()[2:] for line in out.splitlines() if line.startswith("(model version)")
    ]
    assert versions == ["1"] * len(WEEK)  # the last day too, though version 2 was assessed after
    table = out.split("Entries on ", 1)[1]
    assert table.startswith(f"{WEEK[-1].isoformat()} (model version 1):")
    header = table.splitlines()[1].split()
    assert header == ["entry_id", "status", "value", "n", "owner", "action", "reason"]
    statuses = [line.split()[1] for line in table.splitlines()[2:] if line.strip()][: len(STATUSES)]
    assert [STATUS_RANK[s] for s in statuses] == sorted(STATUS_RANK[s] for s in statuses)
    # the rolled-back version, one option away
    other = _register_cli(week_and_rollback, "--model-version", "2")
    assert "model version 2 where it was assessed" in other
    (versions,) = [
        line.split()[2:] for line in other.splitlines() if line.startswith("(model version)")
    ]
    assert versions == ["2"] + ["1"] * (len(WEEK) - 1)  # newest partition first
    assert re.search(r"\n\s*approval_parity_sex\s+breach\s", other.split("Entries on ", 1)[1])
