"""Names and keys every builder of an assessment's Dagster objects shares, and the adapter that turns
a package error into a ``dg.Failure``.
"""

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator

import dagster as dg

from impact_assets.assessment import Assessment
from impact_assets.errors import ImpactAssetsError

DUCKDB_RESOURCE_KEY = "impact_duckdb"

#: Dagster pool of every step that opens the results database. DuckDB admits one writing process per
#: file; with a limit of 1 on this pool (``dagster instance concurrency set impact_assets_results 1``),
#: steps of concurrent runs queue in Dagster instead of retrying on the file lock.
RESULTS_POOL = "impact_assets_results"

DATA_VERSION_TAG = "dagster/data_version"


def assessment_job_name(assessment_id: str) -> str:
    """Name of the job that materializes a whole assessment partition."""
    return f"{assessment_id}__assessment"


def outcomes_job_name(assessment_id: str) -> str:
    """Name of the job that re-assesses a cohort's outcome-based results when its outcomes arrive."""
    return f"{assessment_id}__outcomes"


#: Run tag whose value a register snapshot records as the reason it was taken.
SNAPSHOT_REASON_TAG = "impact_assets/snapshot_reason"

#: Run tag of the day (``YYYY-MM-DD``) on which cohorts' maturity is judged, to replay what was known
#: then (a backtest, the demo's nights); without it, today in the partitions' timezone.
AS_OF_TAG = "impact_assets/as_of"


def as_of(context: dg.AssetExecutionContext) -> dt.date | None:
    """The run's :data:`AS_OF_TAG` day, if it has one."""
    text = context.run.tags.get(AS_OF_TAG)
    return dt.date.fromisoformat(text) if text else None


def release_job_name(assessment_id: str) -> str:
    """Name of the job that decides on the release of the assessed model version and promotes it."""
    return f"{assessment_id}__release"


def check_spec(
    name: str, *, asset: dg.AssetKey, partitions: dg.PartitionsDefinition, **kwargs
) -> dg.AssetCheckSpec:
    """An asset check whose results are keyed by the partition they judged.

    Partitioned asset checks are a preview feature of Dagster 1.13 (``partitions_def`` on the
    spec); without them the UI shows each day's result against the clock instead of its partition,
    so the product uses them and keeps Dagster's preview notice out of every definitions load.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions, **kwargs)


def register_check_name(entry_id: str) -> str:
    """Name of the asset check of a register entry: the entry's id (the snapshot asset has no other
    checks, and entry ids are unique in a spec)."""
    return entry_id


@contextlib.contextmanager
def dagster_failures() -> Iterator[None]:
    """Turn a package error into a ``dg.Failure`` carrying its context as metadata."""
    try:
        yield
    except ImpactAssetsError as exc:
        unsaid = {k: v for k, v in exc.context.items() if str(v) not in exc.message}
        where = ", ".join(f"{k}={v}" for k, v in unsaid.items())
        raise dg.Failure(
            description=f"{exc.message} [{where}]" if where else exc.message,
            metadata={f"impact_assets/{k}": str(v) for k, v in exc.context.items()},
        ) from exc


class AssetKeys:
    """Asset keys of one assessment: its id as prefix, a SQL model's subfolders after it."""

    def __init__(self, assessment: Assessment) -> None:
        self.assessment = assessment
        self.prefix = [assessment.id]

    def table(self, name: str) -> dg.AssetKey:
        """Key of whatever a SQL model may read: a model, a source, or the predictions."""
        if name in self.assessment.sql.models:
            return dg.AssetKey([*self.prefix, *self.assessment.sql.models[name].prefix, name])
        return dg.AssetKey([*self.prefix, name])

    def result(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.prefix, name])
