"""Dagster adapters: assets, checks and jobs built from assessments."""

from impact_assets.orchestration._factory import (
    DUCKDB_RESOURCE_KEY,
    RELEASE_CHECK,
    RESULTS_POOL,
    assessment_job_name,
    build_assessment_definitions,
    definitions_for,
    register_check_name,
    release_job_name,
)
from impact_assets.orchestration._resources import ResultsDatabase

__all__ = [
    "DUCKDB_RESOURCE_KEY",
    "RELEASE_CHECK",
    "RESULTS_POOL",
    "ResultsDatabase",
    "assessment_job_name",
    "build_assessment_definitions",
    "definitions_for",
    "register_check_name",
    "release_job_name",
]
