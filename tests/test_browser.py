"""The Dagster UI in headless Chromium: the register snapshot and the impact report as a user sees them.

Two partitions of the demo are materialized into a real Dagster instance, `dagster-webserver` serves it
on a free local port, and Debian's Chromium (driven by selenium through Debian's chromedriver; nothing
is downloaded) opens the register snapshot's and the report's asset pages, opens their Markdown
metadata and reads the register entries and the report's headings off the page. Screenshots go to
``$IMPACT_ASSETS_TOUR_DIR`` when set (``make tour`` points it at ``docs/tour``), else to the test's
temporary folder.

Without Chromium the test skips, saying what to install; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from impact_assets import ProjectPaths, discover_assessments
from impact_assets.cli import DAGSTER_YAML

from ._servers import free_port, graphql, start_group, stop_group, wait_for
from .conftest import DAYS, REPO, assess
from .test_report import SECTIONS

pytestmark = pytest.mark.slow
STARTUP_SECONDS = 180
PAGE_SECONDS = 60
COMMUNITY_DIALOG_SECONDS = 15
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
)


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = (
        "the browser test needs Chromium and its driver: "
        "apt-get install chromium chromium-driver (Debian's packages; nothing is downloaded)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("IMPACT_ASSETS_TOUR_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def webserver(demo_paths: ProjectPaths, tmp_path: Path) -> Iterator[int]:
    """Two assessed partitions in a Dagster instance on disk, and dagster-webserver serving it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assess(demo_paths, instance, DAYS)
    port = free_port()
    log = tmp_path / "webserver.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_ASSETS_HOME": str(demo_paths.state_dir),
        "IMPACT_ASSETS_ASSESSMENTS_DIR": str(demo_paths.assessments_dir),
    }
    process = start_group(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            *("-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
        ],
        cwd=REPO,
        env=env,
        log=log,
    )
    try:
        wait_for(
            lambda: graphql(
                port,
                "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }",
            )["repositoriesOrError"].get("nodes"),
            STARTUP_SECONDS,
            "the code location to load",
            process,
            log,
        )
        yield port
    finally:
        stop_group(process)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open_asset(driver, port: int, path: str, entry: str) -> None:
    """Open an asset's page, dismiss the first-visit community dialog, wait for a metadata entry."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"http://127.0.0.1:{port}/assets/{path}")
    WebDriverWait(driver, PAGE_SECONDS).until(
        lambda d: entry in d.find_element(By.TAG_NAME, "body").text
    )
    # the dialog opens a moment after the page on a fresh profile, and only once
    skip = "//button[normalize-space()='Skip']"
    try:
        WebDriverWait(driver, COMMUNITY_DIALOG_SECONDS).until(
            lambda d: d.find_elements(By.XPATH, skip)
        )[0].click()
    except TimeoutException:
        return
    WebDriverWait(driver, PAGE_SECONDS).until(lambda d: not d.find_elements(By.XPATH, skip))


def _show_markdown(driver, entry: str):
    """Open the Markdown metadata value of ``entry``; return the dialog showing it, scrolled to its top."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    row = driver.find_element(By.XPATH, f"//tr[.//*[normalize-space()='{entry}']]")
    row.find_element(By.XPATH, ".//a[contains(., 'Show Markdown')]").click()
    dialog = WebDriverWait(driver, PAGE_SECONDS).until(
        lambda d: d.find_element(
            By.XPATH,
            "//button[normalize-space()='Copy']/ancestor::*[@role='dialog'][1]",
        )
    )
    # the dialog opens before its Markdown is rendered into it
    WebDriverWait(driver, PAGE_SECONDS).until(
        lambda d: dialog.find_elements(By.XPATH, ".//table | .//h2")
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", dialog)
    return dialog


def test_the_register_and_the_report_in_the_dagster_ui(
    demo_paths: ProjectPaths, webserver: int, browser, screenshots: Path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (assessment,) = discover_assessments(demo_paths)
    entries = [e.id for e in assessment.spec.register_entries]

    _open_asset(
        browser, webserver, "credit_scoring/impact_register_snapshot", "impact_assets/register"
    )
    browser.save_screenshot(str(screenshots / "1-register-snapshot.png"))
    dialog = _show_markdown(browser, "impact_assets/register")
    shown = dialog.text
    assert [e for e in entries if e not in shown] == []
    assert "breach" in shown and "reason" in shown
    browser.save_screenshot(str(screenshots / "2-register-entries.png"))

    browser.get(
        f"http://127.0.0.1:{webserver}/assets/credit_scoring/impact_register_snapshot?view=checks"
    )
    # one check per register entry, the first one's metadata (status, value, interval) opened
    WebDriverWait(browser, PAGE_SECONDS).until(
        lambda d: (
            f"Checks ({len(entries)})" in (text := d.find_element(By.TAG_NAME, "body").text)
            and f"{min(entries)}" in text
            and "threshold_breach" in text
        )
    )
    browser.save_screenshot(str(screenshots / "3-register-checks.png"))

    _open_asset(browser, webserver, "credit_scoring/impact_report", "impact_assets/report")
    dialog = _show_markdown(browser, "impact_assets/report")
    headings = [h.text for h in dialog.find_elements(By.TAG_NAME, "h2")]
    assert headings == SECTIONS
    images = dialog.find_elements(By.TAG_NAME, "img")
    assert len(images) >= 6  # a causal estimate has no plot before its rollout
    assert all(i.get_attribute("src").startswith("data:image/png;base64,") for i in images)
    # every plot decoded and laid out by the browser, not a broken image
    assert all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) > 0
        for i in images
    )
    browser.save_screenshot(str(screenshots / "4-impact-report.png"))

    browser.get(
        f"http://127.0.0.1:{webserver}/assets/credit_scoring/impact_register_snapshot?view=lineage"
    )
    WebDriverWait(browser, PAGE_SECONDS).until(
        lambda d: "group_metrics" in d.find_element(By.TAG_NAME, "body").text
    )
    browser.save_screenshot(str(screenshots / "5-lineage.png"))
