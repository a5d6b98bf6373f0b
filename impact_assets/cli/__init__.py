"""The ``impact-assets`` command line, one module per group of commands:

* ``_main`` — the command group and the local Dagster instance the commands run on;
* ``_demo`` — ``demo``, ``simulate``, ``train``;
* ``_runs`` — ``assess``, ``lineage``;
* ``_ui`` — ``ui``;
* ``_results`` — ``register``, ``export``;
* ``_oversight`` — ``actions``, ``release``, ``notify``;
* ``_project`` — ``validate``, ``init``, ``schema``.
"""

from impact_assets.cli import _demo, _oversight, _project, _results, _runs, _ui  # noqa: F401  (registers the commands)
from impact_assets.cli._demo import simulate_days, simulated_rollout, train_version
from impact_assets.cli._main import DAGSTER_YAML, main

__all__ = ["DAGSTER_YAML", "main", "simulate_days", "simulated_rollout", "train_version"]
