"""The impact report: sections, embedded plots, and its place in the UI metadata and on disk."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg

from impact_assets import ProjectPaths

from .conftest import DAYS, assess

SECTIONS = [
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
