"""Where an installation reads its assessments and SQL and writes its state.

Every folder is configurable so the same installed code can serve a user's own assessments:

==========================  ================================  ===============================
setting                     environment variable              default
==========================  ================================  ===============================
project directory           ``IMPACT_ASSETS_PROJECT_DIR``     the current working directory
assessments                 ``IMPACT_ASSETS_ASSESSMENTS_DIR`` ``<project>/assessments``
SQL models                  ``IMPACT_ASSETS_SQL_DIR``         ``<project>/dbt_like_sql``
state (DuckDB, registry...) ``IMPACT_ASSETS_HOME``            ``<project>/.impact``
==========================  ================================  ===============================

The environment is read only when :meth:`ProjectPaths.from_env` is called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProjectPaths"]


@dataclass(frozen=True)
class ProjectPaths:
    """Resolved folders of one installation.

    Args:
        project_dir: Root against which relative paths in specs are resolved.
        assessments_dir: Folder of assessment YAML files, one per model.
        sql_dir: Root folder of ``dbt_like_sql`` models.
        state_dir: Folder for everything written: the DuckDB file, the model registry, landing
            batches of the demo simulator, lineage output and the local Dagster instance.

    Example:
        >>> paths = ProjectPaths.for_project("/srv/risk")
        >>> str(paths.database)
        '/srv/risk/.impact/impact_assets.duckdb'
    """

    project_dir: Path
    assessments_dir: Path
    sql_dir: Path
    state_dir: Path

    @classmethod
    def for_project(
        cls, project_dir: str | os.PathLike[str], *, state_dir: str | os.PathLike[str] | None = None
    ) -> ProjectPaths:
        """Default layout under one project folder."""
        root = Path(project_dir).resolve()
        return cls(
            project_dir=root,
            assessments_dir=root / "assessments",
            sql_dir=root / "dbt_like_sql",
            state_dir=Path(state_dir).resolve() if state_dir else root / ".impact",
        )

    @classmethod
    def from_env(
        cls,
        default_project_dir: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ProjectPaths:
        """Resolve folders from ``IMPACT_ASSETS_*`` variables, falling back to the default layout."""
        env = os.environ if environ is None else environ
        root = Path(
            env.get("IMPACT_ASSETS_PROJECT_DIR") or default_project_dir or Path.cwd()
        ).resolve()
        base = cls.for_project(root)

        def pick(var: str, default: Path) -> Path:
            value = env.get(var)
            return (root / value).resolve() if value else default

        return cls(
            project_dir=root,
            assessments_dir=pick("IMPACT_ASSETS_ASSESSMENTS_DIR", base.assessments_dir),
            sql_dir=pick("IMPACT_ASSETS_SQL_DIR", base.sql_dir),
            state_dir=pick("IMPACT_ASSETS_HOME", base.state_dir),
        )

    @property
    def database(self) -> Path:
        """The DuckDB file holding data tables and the ``impact`` results schema.

        Not ``impact.duckdb``: DuckDB names a file's catalog after its stem, and a catalog named like
        the ``impact`` schema makes every ``impact.<table>`` reference ambiguous.
        """
        return self.state_dir / "impact_assets.duckdb"

    @property
    def models_dir(self) -> Path:
        """Root of the local model registry."""
        return self.state_dir / "models"

    @property
    def landing_dir(self) -> Path:
        """Where the demo simulator drops daily batches."""
        return self.state_dir / "landing"

    @property
    def dagster_home(self) -> Path:
        """The local Dagster instance used by ``make demo`` and ``make ui``."""
        return self.state_dir / "dagster"

    def expand(self, path: str) -> Path:
        """Resolve a path from a spec: ``{state_dir}``/``{project_dir}`` placeholders, else project-relative."""
        text = path.replace("{state_dir}", str(self.state_dir)).replace(
            "{project_dir}", str(self.project_dir)
        )
        candidate = Path(text)
        return candidate if candidate.is_absolute() else (self.project_dir / candidate)
