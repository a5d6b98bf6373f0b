"""Evaluating expectations on one partition with Great Expectations 1.x on a pandas frame.

Why pandas and not GX's SQL datasource on DuckDB: with GX 1.24 through duckdb-engine, every
expectation fails with ``MetricResolutionError: list index out of range`` (great_expectations issues
10738 and 11579), so the SQL path is not reliable. The frame is bounded: only the partition's rows
and only the columns the expectations name are loaded from DuckDB.

Raw values of sensitive columns never leave this module: their sample unexpected values are masked.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from impact_assets.quality._catalog import build_expectation, gx
from impact_assets.quality._suite import QualityCheck

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MASK", "QualityResult", "evaluate_checks", "warm_up"]

MASK = "<masked: sensitive column>"


@dataclass(frozen=True)
class QualityResult:
    check: QualityCheck
    success: bool
    observed_value: str | None
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: tuple[str, ...]


_CONTEXT: list[Any] = []
_CONTEXT_LOCK = threading.Lock()


def _context() -> Any:
    with _CONTEXT_LOCK:  # a warm-up thread may be building it
        if not _CONTEXT:
            _CONTEXT.append(_new_context())
    return _CONTEXT[0]


def warm_up() -> threading.Thread | None:
    """Import GX and build its context on a background thread (returned), if not done yet.

    The import takes seconds of Python. A step that checks a table it is about to write starts this
    first, so the import runs while DuckDB (which releases the GIL) writes the table; the check then
    waits for whatever is left of it. A failure here is left to the check's own call to report.
    """
    if _CONTEXT:
        return None

    def build() -> None:
        with contextlib.suppress(Exception):  # raised again where the check itself needs GX
            _context()

    thread = threading.Thread(target=build, name="impact-assets-gx-warm-up", daemon=True)
    thread.start()
    return thread


def _new_context() -> Any:
    module = gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    context = module.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    # GX hashes every pandas batch under this many bytes into a batch marker nothing here reads:
    # about 2 s per ten million rows of the checked columns. It has no setting but this constant.
    pandas_execution_engine.HASH_THRESHOLD = 0
    return context


_BETWEEN = "expect_column_values_to_be_between"


def _as_epoch(frame: pd.DataFrame, check: QualityCheck) -> tuple[str, dict[str, Any]] | None:
    """A range check on a timestamp column, rewritten onto microseconds since the epoch.

    GX compares each pandas timestamp with the bounds one by one (about 2.4 s per million rows, 25 s
    for a 10M-row freshness check); on numbers it takes 0.05 s. The bounds are converted the same way,
    so the verdict and the counts are those of the timestamp comparison. Returns the shadow column
    (added to ``frame``) and the rewritten arguments, or ``None`` for any other check.
    """
    import pandas as pd

    column = check.kwargs.get("column")
    if check.expectation != _BETWEEN or column not in frame:
        return None
    values = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(values):
        return None
    zone = getattr(values.dtype, "tz", None)

    def micros(bound: Any) -> float | None:
        if bound is None:
            return None
        stamp = pd.Timestamp(bound)
        if zone is not None and stamp.tzinfo is None:
            stamp = stamp.tz_localize(zone)
        elif zone is None and stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return float(stamp.value // 1000)  # .value is in nanoseconds whatever the unit

    shadow = f"__epoch_us__{column}"
    if shadow not in frame:
        as_us = values.dt.as_unit("us")
        frame[shadow] = as_us.astype("int64").astype("float64").where(as_us.notna())
    kwargs = {
        **check.kwargs,
        "column": shadow,
        "min_value": micros(check.kwargs.get("min_value")),
        "max_value": micros(check.kwargs.get("max_value")),
    }
    return shadow, kwargs


def _from_epoch(value: Any, zone: Any) -> str:
    import pandas as pd

    stamp = pd.Timestamp(int(float(value)), unit="us", tz="UTC")
    return str(stamp.tz_convert(zone) if zone is not None else stamp.tz_localize(None))


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def evaluate_checks(
    frame: pd.DataFrame | Any,
    checks: list[QualityCheck],
    *,
    sensitive_columns: frozenset[str] | set[str] = frozenset(),
) -> list[QualityResult]:
    """Validate ``checks`` (all on the same table) against ``frame`` in one GX suite run.

    Args:
        frame: The partition's rows of the table (the columns the checks need): a pandas frame, or
            a Spark DataFrame, validated by GX on Spark.
        checks: Expectations on that table.
        sensitive_columns: Columns whose values are masked in the results.
    """
    import pandas as pd

    if not checks:
        return []
    context = _context()
    name = f"impact_{uuid.uuid4().hex}"
    on_pandas = isinstance(frame, pd.DataFrame)
    if on_pandas:  # shadow columns are added to a view, never to the caller's frame
        frame = frame.copy(deep=False)
    rewritten = {id(c): _as_epoch(frame, c) if on_pandas else None for c in checks}
    source = (
        context.data_sources.add_pandas(name)
        if on_pandas
        else context.data_sources.add_spark(name, persist=False)
    )
    batch = (
        source.add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx().ExpectationSuite(name=name)
    for check in checks:
        epoch = rewritten[id(check)]
        suite.add_expectation(
            build_expectation(check.expectation, epoch[1] if epoch else check.kwargs)
        )
    try:
        outcome = batch.validate(
            suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5}
        )
    finally:
        context.data_sources.delete(name)
    results = []
    for check, result in zip(checks, outcome.results, strict=True):
        details = result.result or {}
        masked = check.column in sensitive_columns
        zone = getattr(frame[check.column].dtype, "tz", None) if rewritten[id(check)] else None
        sample = tuple(
            MASK if masked else (_from_epoch(v, zone) if rewritten[id(check)] else str(v))
            for v in details.get("partial_unexpected_list", [])[:5]
        )
        observed = details.get("observed_value")
        results.append(
            QualityResult(
                check=check,
                success=bool(result.success),
                observed_value=None if observed is None else (MASK if masked else str(observed)),
                element_count=int(details["element_count"])
                if details.get("element_count") is not None
                else ((len(frame) if on_pandas else frame.count()) if check.column else None),
                unexpected_count=int(details["unexpected_count"])
                if details.get("unexpected_count") is not None
                else None,
                unexpected_percent=_number(details.get("unexpected_percent")),
                sample=sample,
            )
        )
    return results
