"""impact-assets: model impact assessments as Dagster software-defined assets.

Example:
    In a project's ``definitions.py``::

        from impact_assets import ProjectPaths, build_definitions

        defs = build_definitions(ProjectPaths.from_env(default_project_dir=__file__.rsplit("/", 1)[0]))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from impact_assets.errors import (
    DataContractError,
    ImpactAssetsError,
    LineageConfigError,
    ModelRegistryError,
    SpecError,
    SqlModelError,
    StorageError,
)
from impact_assets.settings import ProjectPaths

if TYPE_CHECKING:
    import dagster as dg

    from impact_assets.assessment import Assessment, discover_assessments, load_assessment
    from impact_assets.orchestration import (
        assessment_job_name,
        build_assessment_definitions,
        register_check_name,
        release_job_name,
    )

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

#: Imported when first used, so the command line (``impact-assets --help``, ``validate``) starts
#: without Dagster, pandas or DuckDB.
_LAZY = {
    "Assessment": "impact_assets.assessment",
    "discover_assessments": "impact_assets.assessment",
    "load_assessment": "impact_assets.assessment",
    "assessment_job_name": "impact_assets.orchestration",
    "build_assessment_definitions": "impact_assets.orchestration",
    "definitions_for": "impact_assets.orchestration",
    "register_check_name": "impact_assets.orchestration",
    "release_job_name": "impact_assets.orchestration",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def build_definitions(paths: ProjectPaths) -> dg.Definitions:
    """Definitions of every assessment in ``paths.assessments_dir``, merged into one code location,
    with the sensor that delivers their OpenLineage events."""
    from impact_assets.assessment import discover_assessments
    from impact_assets.orchestration import definitions_for

    return definitions_for(discover_assessments(paths), paths)
