"""A Dagster Component: impact assessments declared in a ``defs.yaml`` of any Dagster project.

Example ``defs/credit_risk/defs.yaml``::

    type: impact_assets.component.ImpactAssessmentComponent
    attributes:
      assessments: credit_risk.yaml   # a spec file, or a folder of them (relative to this folder)
      sql_dir: sql                    # the SQL models the specs select from

``dg scaffold defs impact_assets.component.ImpactAssessmentComponent credit_risk`` writes that file, a
commented spec and a SQL stub (the same scaffold as ``impact-assets init``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster.components.scaffold.scaffold import ScaffoldRequest, scaffold_with
from pydantic import Field

from impact_assets._scaffold import scaffold
from impact_assets.assessment import discover_assessments, load_assessment
from impact_assets.orchestration import definitions_for
from impact_assets.settings import ProjectPaths

__all__ = ["ImpactAssessmentComponent"]


class ImpactAssessmentScaffolder(dg.Scaffolder):
    """Writes ``defs.yaml``, ``<folder name>.yaml`` (a commented spec), ``sql/<name>/`` and a sample
    of data in ``data/<name>/`` of the project."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        target = Path(request.target_path)
        name = target.name
        root = Path(request.project_root or target)
        scaffold(
            ProjectPaths(
                project_dir=root,
                assessments_dir=target,
                sql_dir=target / "sql",
                state_dir=root / ".impact",
            ),
            name,
            project_files=False,  # the dg project has its own
        )
        dg.scaffold_component(request, {"assessments": f"{name}.yaml", "sql_dir": "sql"})


@scaffold_with(ImpactAssessmentScaffolder)
class ImpactAssessmentComponent(dg.Component, dg.Model, dg.Resolvable):
    """Model impact assessments from YAML specs and SQL models: assets, checks, jobs, schedules,
    sensors and OpenLineage delivery, as ``impact_assets.build_definitions`` builds them."""

    assessments: str = Field(
        description="An assessment YAML file, or a folder of them, relative to this defs.yaml's folder."
    )
    sql_dir: str = Field(
        default="sql", description="Folder of the SQL models, relative to this defs.yaml's folder."
    )
    state_dir: str | None = Field(
        default=None,
        description="Results database, model registry and lineage output; default $IMPACT_ASSETS_HOME, "
        "else .impact in the project root.",
    )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        here = context.path
        target = (here / self.assessments).resolve()
        home = os.environ.get("IMPACT_ASSETS_HOME")
        state = (
            here / self.state_dir
            if self.state_dir
            else Path(home)
            if home
            else context.project_root / ".impact"
        )
        paths = ProjectPaths(
            project_dir=context.project_root,
            assessments_dir=target if target.is_dir() else target.parent,
            sql_dir=(here / self.sql_dir).resolve(),
            state_dir=state.resolve(),
        )
        assessments = (
            discover_assessments(paths) if target.is_dir() else [load_assessment(target, paths)]
        )
        return definitions_for(assessments, paths)
