"""impact-assets: model impact assessments as Dagster software-defined assets.

Example:
    In a project's ``definitions.py``::

        from impact_assets import ProjectPaths, build_definitions

        defs = build_definitions(ProjectPaths.from_env(default_project_dir=__file__.rsplit("/", 1)[0]))
"""

from __future__ import annotations

import dagster as dg

from impact_assets.assessment import Assessment, discover_assessments, load_assessment
from impact_assets.errors import (
    DataContractError,
    ImpactAssetsError,
    LineageConfigError,
    ModelRegistryError,
    SpecError,
    SqlModelError,
    StorageError,
)
from impact_assets.orchestration import (
    assessment_job_name,
    build_assessment_definitions,
    definitions_for,
    register_check_name,
    release_job_name,
)
from impact_assets.settings import ProjectPaths

__all__ = [
    "Assessment",
    "DataContractError",
    "ImpactAssetsError",
    "LineageConfigError",
    "ModelRegistryError",
    "ProjectPaths",
    "SpecError",
    "SqlModelError",
    "StorageError",
    "assessment_job_name",
    "build_assessment_definitions",
    "build_definitions",
    "discover_assessments",
    "load_assessment",
    "register_check_name",
    "release_job_name",
]


def build_definitions(paths: ProjectPaths) -> dg.Definitions:
    """Definitions of every assessment in ``paths.assessments_dir``, merged into one code location,
    with the sensor that delivers their OpenLineage events."""
    return definitions_for(discover_assessments(paths), paths)
