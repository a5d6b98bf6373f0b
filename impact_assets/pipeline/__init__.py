"""The steps of an assessment partition, free of Dagster: what each asset calls.

Each function takes an open DuckDB connection and an :class:`~impact_assets.assessment.Assessment`
and returns plain results. One module per stage, in the order a partition flows through them:

* ``_engine`` — where row-level work runs (DuckDB or Spark) and what every step prepares first;
* ``_sql_models`` — the sources' fingerprints (data versions) and the SQL models' partitions;
* ``_scoring`` — the registry's model scores a partition; a new version is trained;
* ``_quality`` — Great Expectations on the partition's frame; which failures block the metrics;
* ``_fairness`` — group metrics, disparities, intervals and the inputs' contract;
* ``_outcomes`` — outcomes that arrive late: their contract, cohorts' realised and estimated
  metrics, label coverage, and which cohorts are due for re-assessment;
* ``_analytics`` — KPIs, drift, scenarios, sensitivity and the causal estimate;
* ``_results`` — result rows replaced per partition and read back for the register;
* ``_register`` — the register snapshot, and failed runs recorded for the owners;
* ``_release`` — the release recommendation on the assessed model version, and its sign-off.

``docs/architecture.md`` shows how these stages connect to the spec, the Dagster adapters and the
report and lineage.
"""

from impact_assets.pipeline._analytics import (
    compute_business_kpis,
    compute_causal,
    compute_drift,
    compute_scenarios,
    compute_sensitivity,
    seeded_sample,
)
from impact_assets.pipeline._engine import prepare, row_engine, spark_engine
from impact_assets.pipeline._fairness import (
    CONTRACT_CHECK,
    FairnessResults,
    compute_fairness,
    record_contract,
)
from impact_assets.pipeline._outcomes import (
    OUTCOMES_CONTRACT,
    UNKNOWN_OUTCOMES,
    OutcomeResults,
    compute_outcomes,
    evaluation_day,
    outcome_reassessments,
)
from impact_assets.pipeline._quality import (
    READABLE_CHECK,
    blocking_failures,
    run_quality,
)
from impact_assets.pipeline._register import (
    FIX_THE_DATA,
    FIX_THE_FILE,
    record_readable,
    record_run_failure,
    record_unreadable_partition,
    snapshot_register,
)
from impact_assets.pipeline._release import ReleaseDecision, decide_release, sign_off_release
from impact_assets.pipeline._results import latest_quality, latest_results
from impact_assets.pipeline._scoring import score, train_model
from impact_assets.pipeline._sql_models import (
    UNREADABLE_FILE,
    data_version,
    file_fingerprints,
    run_sql_model,
    source_fingerprints,
    unreadable_files,
)

__all__ = [
    "CONTRACT_CHECK",
    "FIX_THE_DATA",
    "FIX_THE_FILE",
    "OUTCOMES_CONTRACT",
    "READABLE_CHECK",
    "UNKNOWN_OUTCOMES",
    "UNREADABLE_FILE",
    "FairnessResults",
    "OutcomeResults",
    "ReleaseDecision",
    "blocking_failures",
    "compute_business_kpis",
    "compute_causal",
    "compute_drift",
    "compute_fairness",
    "compute_outcomes",
    "compute_scenarios",
    "compute_sensitivity",
    "data_version",
    "decide_release",
    "evaluation_day",
    "file_fingerprints",
    "latest_quality",
    "latest_results",
    "outcome_reassessments",
    "prepare",
    "record_contract",
    "record_readable",
    "record_run_failure",
    "record_unreadable_partition",
    "row_engine",
    "run_quality",
    "run_sql_model",
    "score",
    "seeded_sample",
    "sign_off_release",
    "snapshot_register",
    "source_fingerprints",
    "spark_engine",
    "train_model",
    "unreadable_files",
]
