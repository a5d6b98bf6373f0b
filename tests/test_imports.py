"""What loading the package costs a process that only builds definitions or runs the CLI."""

from __future__ import annotations

import subprocess
import sys

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
