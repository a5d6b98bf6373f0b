"""Dagster adapters: assets, checks, jobs, schedules and sensors built from assessments.

One module per Dagster concept; each is a thin layer over :mod:`impact_assets.pipeline`:

* ``_common`` — asset keys, job and check names, the results pool, errors as ``dg.Failure``;
* ``_resources`` — the results database (``dagster_duckdb.DuckDBResource``);
* ``_data_assets`` — raw sources, SQL models and predictions;
* ``_checks`` — data-quality expectations as asset checks;
* ``_metric_assets`` — group metrics, disparities and the analytics;
* ``_outcome_assets`` — outcome-based metrics of a partition's cohort, with the outcomes' contract;
* ``_register_assets`` — the register snapshot (one check per entry) and the impact report;
* ``_release_assets`` — the release decision and the promoted model;
* ``_automation`` — the nightly schedule and the sensors (source data, model version, outcomes, run failure);
* ``_definitions`` — one assessment's ``dg.Definitions``, and all assessments merged.
"""

from impact_assets.orchestration._common import (
    AS_OF_TAG,
    DUCKDB_RESOURCE_KEY,
    RESULTS_POOL,
    SNAPSHOT_REASON_TAG,
    assessment_job_name,
    outcomes_job_name,
    register_check_name,
    release_job_name,
)
from impact_assets.orchestration._definitions import build_assessment_definitions, definitions_for
from impact_assets.orchestration._release_assets import RELEASE_CHECK
from impact_assets.orchestration._resources import ResultsDatabase

__all__ = [
    "AS_OF_TAG",
    "DUCKDB_RESOURCE_KEY",
    "RELEASE_CHECK",
    "RESULTS_POOL",
    "SNAPSHOT_REASON_TAG",
    "ResultsDatabase",
    "assessment_job_name",
    "build_assessment_definitions",
    "definitions_for",
    "outcomes_job_name",
    "register_check_name",
    "release_job_name",
]
