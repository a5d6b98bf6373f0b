"""What loading the package costs a process that only builds definitions or runs the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import REPO

# Imported by the steps that need them: each takes a second or more to import, and a code server,
# a sensor tick or `impact-assets validate` needs none of them.
HEAVY = ("sklearn", "scipy", "statsmodels", "fairlearn", "matplotlib", "mlflow")


def test_importing_the_package_leaves_the_heavy_libraries_alone():
    code = (
        "import sys, impact_assets, impact_assets.orchestration, impact_assets.pipeline; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert loaded == ""


def test_expectations_gx_accepted_once_are_not_built_again_when_definitions_load(tmp_path):
    code = (
        "import sys, definitions; "
        "print('great_expectations' in sys.modules, len(definitions.defs.resolve_asset_graph().asset_check_keys))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def load() -> tuple[str, str]:
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        ).stdout.split()
        return out[-2], out[-1]

    first, second = load(), load()
    assert first[0] == "True" and second == ("False", first[1])  # the same checks, GX not imported
    # one it has not accepted (a changed expectation, another GX version) is built by GX again
    accepted = tmp_path / "cache" / "impact-assets" / "accepted-expectations.json"
    assert len(json.loads(accepted.read_text())) >= 4
    accepted.write_text(json.dumps(json.loads(accepted.read_text())[1:]))
    assert load()[0] == "True"


WARM_UP = """
import sys
import pandas as pd
from impact_assets.quality import QualityCheck, evaluate_checks, warm_up
from impact_assets.quality import _evaluate

if sys.argv[1] == "broken":
    sys.modules["great_expectations"] = None  # an import of it raises ImportError
warm_up().join()
print("built" if _evaluate._CONTEXT else "not built")
check = QualityCheck(
    name="x_not_null", table="t", expectation="expect_column_values_to_not_be_null",
    kwargs={"column": "x"}, severity="error", blocking=False, derived=False,
)
try:
    (result,) = evaluate_checks(pd.DataFrame({"x": [1.0, None, 3.0]}), [check])
    print(result.success, result.unexpected_count)
except ImportError as exc:
    print("ImportError", exc)
"""


def test_warm_up_builds_the_gx_context_on_its_thread_and_leaves_failures_to_the_check():
    def run(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", WARM_UP, mode], check=True, capture_output=True, text=True
        )

    done = run("working")
    assert done.stdout.split() == ["built", "False", "1"]
    broken = run("broken")
    lines = broken.stdout.splitlines()
    assert lines[0] == "not built"
    assert lines[1].startswith("ImportError") and "great_expectations" in lines[1]
    assert "Traceback" not in broken.stderr  # the warm-up thread's failure is not printed


def test_an_unusable_expectation_cache_only_means_gx_checks_again(tmp_path, monkeypatch):
    from impact_assets.quality import check_expectation

    args = ("expect_column_values_to_not_be_null", {"column": "x"})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")  # the cache folder cannot be made
    check_expectation(*args)
    # the cache file's place is taken by a folder: the renamed file cannot land, and none is left
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    taken = tmp_path / "cache" / "impact-assets" / "accepted-expectations.json"
    (taken / "inside").mkdir(parents=True)
    check_expectation(*args)
    assert sorted(p.name for p in taken.parent.iterdir()) == ["accepted-expectations.json"]


#: What the command line must not import to answer at once (each takes a tenth of a second or more).
NOT_FOR_THE_CLI = ("dagster", "pandas", "numpy", "pyarrow", "great_expectations", *HEAVY)


def test_help_and_validate_start_without_dagster_pandas_or_numpy(tmp_path):
    code = (
        "import sys; from impact_assets.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
        f"print(','.join(m for m in {NOT_FOR_THE_CLI!r} if m in sys.modules))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def loaded(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code, *args],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        ).stdout
        return out.splitlines()[-1]

    assert loaded("--help") == ""
    loaded("validate")  # the first validation asks Great Expectations; it remembers its answers
    assert loaded("validate") == ""
