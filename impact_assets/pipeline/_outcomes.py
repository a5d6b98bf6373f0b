"""Outcome-based results of a partition's cohort: the outcomes' contract, realised metrics once the
cohort has matured, estimates before, label coverage, and the fingerprint that tells when the
cohort's outcomes changed.

The outcomes are joined to the decisions in the view ``<scored_table>__with_outcomes`` (one outcome
per decision: the latest observed), whose label column is the bindings' label; every step that
reads outcomes reads that view.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.errors import DataContractError
from impact_assets.fairness import disparities, group_cells
from impact_assets.outcomes import (
    CohortWindow,
    calibration_refusals,
    cohort_of,
    estimated_disparity_intervals,
    estimated_performance,
    label_coverage,
)
from impact_assets.pipeline._fairness import fairness_frames
from impact_assets.pipeline._quality import record_builtin_check
from impact_assets.pipeline._results import latest_quality, result_keys
from impact_assets.register import CohortState
from impact_assets.spec import OVERALL, OutcomesSpec
from impact_assets.sql import ident, literal, qualified
from impact_assets.storage import SCHEMA, append_frame

#: The built-in check of the outcomes: unique per decision, binary, observed on or after the decision.
OUTCOMES_CONTRACT = "outcomes_contract"
#: The built-in warning check: outcomes whose id is no decision of the assessment.
UNKNOWN_OUTCOMES = "outcomes_match_decisions"
OBSERVED = "_observed_at"

DUPLICATE = "{table}.{column} has {count} ids with more than one outcome; e.g. {example}"
NOT_BINARY = (
    "{table}.{column} must be binary, but cohort {cohort} has the values {values}; e.g. {example}"
)
BEFORE_DECISION = "{table}.{column} is before the decision for {count} outcomes of cohort {cohort}; e.g. {example}"
UNKNOWN_IDS = "{count} rows of {table} observed by the last day assessed have an {column} that is no decision of {scored}; e.g. {example}"
ESTIMATED_GAP = (
    "estimated from calibrated scores (CBPE); between groups of one rate, an approximate interval "
    "from the two groups that set it"
)


@dataclass(frozen=True)
class OutcomeResults:
    cohort: CohortWindow
    matured: bool
    matures_on: dt.date
    coverage: float | None
    outcomes_version: str
    group_metrics: pd.DataFrame
    disparities: pd.DataFrame
    label_coverage: pd.DataFrame


def joined_relation(assessment: Assessment) -> str:
    """The decisions with their outcomes (or the scored table, when outcomes are not declared)."""
    scored = assessment.spec.bindings.scored_table
    if assessment.spec.outcomes is None:
        return qualified(assessment.schema, scored)
    return qualified(assessment.schema, f"{scored}__with_outcomes")


def _columns(outcomes: OutcomesSpec, assessment: Assessment) -> tuple[str, str]:
    b = assessment.spec.bindings
    return outcomes.id_column or b.id_column, outcomes.label or b.label


def outcomes_table(assessment: Assessment) -> str:
    """Name of the table holding the outcomes (for messages and checks)."""
    outcomes = assessment.spec.outcomes
    assert outcomes is not None
    return outcomes.table or assessment.spec.bindings.scored_table


def ensure_joined_view(conn: duckdb.DuckDBPyConnection, assessment: Assessment) -> str:
    """(Re)create ``<scored_table>__with_outcomes`` and return it; needs the scored table."""
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None
    scored = qualified(assessment.schema, b.scored_table)
    if outcomes.table is None:
        observed = ident(outcomes.observed_at) if outcomes.observed_at else "NULL"
        body = f"SELECT *, CAST({observed} AS DATE) AS {OBSERVED} FROM {scored}"
    else:
        id_column, label = _columns(outcomes, assessment)
        observed = f"o.{ident(outcomes.observed_at)}" if outcomes.observed_at else "NULL"
        columns = assessment.sql.columns.get(b.scored_table) or ()
        drop = f" EXCLUDE ({ident(b.label)})" if b.label in columns else ""
        # one outcome per decision: the latest observed (duplicates fail the outcomes' contract).
        # De-duplicated after the join, per (partition, decision): a filter on the partition column
        # then reaches the scored table and the join, and only that day's outcomes are ranked (not
        # every outcome ever recorded, as ranking the outcomes table first would).
        order = f"{observed} DESC NULLS LAST" if outcomes.observed_at else "NULL"
        body = (
            f"SELECT d.*{drop}, o.{ident(label)} AS {ident(b.label)}, CAST({observed} AS DATE) AS {OBSERVED} "
            f"FROM {scored} AS d LEFT JOIN {qualified(assessment.schema, outcomes.table)} AS o "
            f"ON o.{ident(id_column)} = d.{ident(b.id_column)} "
            f"QUALIFY row_number() OVER (PARTITION BY d.{ident(b.partition_column)}, d.{ident(b.id_column)} ORDER BY {order}) = 1"
        )
    view = joined_relation(assessment)
    conn.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
    return view


def scored_relation(conn: duckdb.DuckDBPyConnection, assessment: Assessment) -> str:
    """The relation the analytics read: the decisions with their outcomes as known now."""
    if assessment.spec.outcomes is None:
        return joined_relation(assessment)
    return ensure_joined_view(conn, assessment)


def evaluation_day(assessment: Assessment, now: dt.datetime | None = None) -> dt.date:
    """Today in the partitions' timezone: the day maturity is judged on."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(assessment.spec.partitions.timezone)).date()


def _day(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)


def _example(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> str:
    rows = conn.execute(f"{sql} LIMIT 1", params).df()
    return "{}" if rows.empty else str(rows.iloc[0].to_dict())


def check_outcomes(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, cohort: CohortWindow
) -> tuple[str | None, str | None]:
    """The outcomes' contract on one cohort, and the warning of outcomes matching no decision.

    Returns:
        The contract violation (``None`` when it holds) and the warning (``None`` when none).
    """
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None
    table = outcomes_table(assessment)
    id_column, label = _columns(outcomes, assessment)
    scored = qualified(assessment.schema, b.scored_table)
    day = f"CAST(d.{ident(b.partition_column)} AS DATE)"
    window = [cohort.start, cohort.end]
    source = qualified(assessment.schema, table)
    if outcomes.table is not None:
        # decisions' ids of the cohort joined to every outcome row (not the deduplicated view)
        rows = (
            f"FROM {source} AS o JOIN {scored} AS d ON o.{ident(id_column)} = d.{ident(b.id_column)} "
            f"WHERE {day} BETWEEN ? AND ?"
        )
        duplicated = conn.execute(
            f"SELECT count(*) FROM (SELECT o.{ident(id_column)} {rows} GROUP BY 1 HAVING count(*) > 1)",
            window,
        ).fetchall()[0][0]
        if duplicated:
            example = _example(
                conn,
                f"SELECT o.* {rows} QUALIFY count(*) OVER (PARTITION BY o.{ident(id_column)}) > 1 "
                f"ORDER BY o.{ident(id_column)}",
                window,
            )
            return (
                DUPLICATE.format(table=table, column=id_column, count=duplicated, example=example),
                None,
            )
    else:
        rows = (
            f"FROM {scored} AS o WHERE CAST(o.{ident(b.partition_column)} AS DATE) BETWEEN ? AND ?"
        )
        day = f"CAST(o.{ident(b.partition_column)} AS DATE)"
    values = [
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT CAST(o.{ident(label)} AS VARCHAR) {rows} AND o.{ident(label)} IS NOT NULL ORDER BY 1 LIMIT 5",
            window,
        ).fetchall()
    ]
    # binary: two values at most, and with a 1/true positive label only 0/1 (or false/true)
    positive = str(spec.model.positive_label)
    allowed = (
        {"0", "1", "false", "true"}
        if positive.lower() in {"1", "true"}
        else {v.lower() for v in values[:2]}
    )
    if len(values) > 2 or any(v.lower() not in allowed for v in values):
        example = _example(
            conn,
            f"SELECT o.* {rows} AND lower(CAST(o.{ident(label)} AS VARCHAR)) NOT IN "
            f"({', '.join(literal(v) for v in sorted(allowed))})",
            window,
        )
        return (
            NOT_BINARY.format(
                table=table, column=label, cohort=cohort.key, values=values, example=example
            ),
            None,
        )
    if outcomes.observed_at:
        early = f"{rows} AND CAST(o.{ident(outcomes.observed_at)} AS DATE) < {day}"
        count = conn.execute(f"SELECT count(*) {early}", window).fetchall()[0][0]
        if count:
            example = _example(conn, f"SELECT o.* {early}", window)
            return (
                BEFORE_DECISION.format(
                    table=table,
                    column=outcomes.observed_at,
                    count=count,
                    cohort=cohort.key,
                    example=example,
                ),
                None,
            )
    if outcomes.table is None:
        return None, None
    # outcomes observed after the last decision assessed may be those of days not assessed yet
    seen = (
        f" WHERE CAST(o.{ident(outcomes.observed_at)} AS DATE) <= "
        f"(SELECT max(CAST({ident(b.partition_column)} AS DATE)) FROM {scored})"
        if outcomes.observed_at
        else ""
    )
    orphans = (
        f"FROM {source} AS o ANTI JOIN {scored} AS d ON o.{ident(id_column)} = d.{ident(b.id_column)}"
        f"{seen}"
    )
    count = conn.execute(f"SELECT count(*) {orphans}").fetchall()[0][0]
    if not count:
        return None, None
    example = _example(conn, f"SELECT o.* {orphans} ORDER BY ALL", [])
    return None, UNKNOWN_IDS.format(
        count=count, table=table, column=id_column, scored=b.scored_table, example=example
    )


@dataclass(frozen=True)
class CohortOutcomes:
    """What the outcomes of one cohort are now: their fingerprint and coverage."""

    cohort: CohortWindow
    fingerprint: str
    coverage: float | None


def cohort_outcomes(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, cohort: CohortWindow | None = None
) -> dict[str, CohortOutcomes]:
    """Per cohort key (only ``cohort``'s when given), a fingerprint of its decisions' known
    outcomes (ids, outcomes, dates) and its label coverage, in one scan of the decisions joined to
    their outcomes."""
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None
    view = ensure_joined_view(conn, assessment)
    day = f"CAST({ident(b.partition_column)} AS DATE)"
    key = {
        "day": f"strftime({day}, '%Y-%m-%d')",
        "week": f"strftime({day}, '%G-W%V')",
        "month": f"strftime({day}, '%Y-%m')",
        "year": f"strftime({day}, '%Y')",
    }[outcomes.cohort]
    label, known = ident(b.label), f"{ident(b.label)} IS NOT NULL"
    observable = (
        "TRUE"
        if outcomes.observed_for == "all"
        else f"CAST({ident(b.prediction)} AS VARCHAR) = {literal(str(spec.model.positive_label))}"
    )
    row = f"hash({ident(b.id_column)}, {label}, {OBSERVED})"
    where = (
        ""
        if cohort is None
        else f"WHERE {day} BETWEEN DATE {literal(cohort.start.isoformat())} AND DATE {literal(cohort.end.isoformat())}"
    )
    rows = conn.execute(
        f"""SELECT {key} AS c, min({day}), count(*) FILTER (WHERE {known}),
                   CAST(sum({row}) FILTER (WHERE {known}) AS VARCHAR),
                   CAST(bit_xor({row}) FILTER (WHERE {known}) AS VARCHAR),
                   count(*) FILTER (WHERE {observable}),
                   count(*) FILTER (WHERE {observable} AND {known})
            FROM {view} {where} GROUP BY c ORDER BY c"""
    ).fetchall()
    return {
        c: CohortOutcomes(
            cohort_of(first, outcomes.cohort),
            hashlib.sha256(f"{n}:{h}:{x}".encode()).hexdigest()[:16] if n else "none",
            labelled / observable if observable else None,
        )
        for c, first, n, h, x, observable, labelled in rows
        if c is not None
    }


def outcome_reassessments(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    *,
    last_partition: str | None,
    today: dt.date | None = None,
) -> list[tuple[str, str, str]]:
    """The cohorts whose outcome-based results are out of date: matured (by date or coverage) and
    never assessed as matured, or assessed on other outcomes than those known now.

    Returns:
        ``(cohort key, partition that assesses it: its last day, outcomes fingerprint)`` per cohort.
    """
    outcomes = assessment.spec.outcomes
    assert outcomes is not None
    today = today or evaluation_day(assessment)
    stored = {
        key: (version, matured)
        for key, version, matured in conn.execute(
            f"""SELECT cohort_key, outcomes_version, matured FROM {SCHEMA}.outcome_group_metrics
                WHERE assessment_id = ? AND basis = 'realised'
                QUALIFY row_number() OVER (PARTITION BY cohort_key ORDER BY computed_at DESC) = 1""",
            [assessment.id],
        ).fetchall()
    }
    due = []
    for key, now in cohort_outcomes(conn, assessment).items():
        owner = now.cohort.end.isoformat()
        if last_partition is None or owner > last_partition or now.fingerprint == "none":
            continue
        matured = now.cohort.is_mature(today, outcomes.maturity_days) or (
            outcomes.min_coverage is not None
            and now.coverage is not None
            and now.coverage >= outcomes.min_coverage
        )
        if matured and stored.get(key) != (now.fingerprint, True):
            due.append((key, owner, now.fingerprint))
    return due


@contextmanager
def _cohort_view(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, cohort: CohortWindow, labelled: bool
) -> Iterator[str]:
    """A view of the cohort's decisions (only those with an outcome when ``labelled``), all dated
    on the cohort's first day so that one partition filter selects them; dropped after use, so
    that the results file does not collect one view per cohort."""
    b = assessment.spec.bindings
    name = (
        f"{b.scored_table}__cohort_{cohort.key.replace('-', '_')}{'_labelled' if labelled else ''}"
    )
    view = qualified(assessment.schema, name)
    day = f"CAST({ident(b.partition_column)} AS DATE)"
    known = f" AND {ident(b.label)} IS NOT NULL" if labelled else ""
    conn.execute(
        f"CREATE OR REPLACE VIEW {view} AS SELECT * REPLACE (DATE {literal(cohort.start.isoformat())} AS {ident(b.partition_column)}) "
        f"FROM {joined_relation(assessment)} WHERE {day} BETWEEN DATE {literal(cohort.start.isoformat())} "
        f"AND DATE {literal(cohort.end.isoformat())}{known}"
    )
    try:
        yield view
    finally:
        conn.execute(f"DROP VIEW IF EXISTS {view}")


def _reference_window(
    assessment: Assessment, cohort: CohortWindow, today: dt.date
) -> CohortWindow | None:
    """The latest matured cohorts before ``cohort`` (``estimate.reference_cohorts`` of them), as one window."""
    outcomes = assessment.spec.outcomes
    assert outcomes is not None and outcomes.estimate is not None
    last = cohort_of(cohort.start - dt.timedelta(days=1), outcomes.cohort)
    while not last.is_mature(today, outcomes.maturity_days):
        last = cohort_of(last.start - dt.timedelta(days=1), outcomes.cohort)
        if last.end < assessment.spec.partitions.start_date:
            return None
    first = last
    for _ in range(outcomes.estimate.reference_cohorts - 1):
        first = cohort_of(first.start - dt.timedelta(days=1), outcomes.cohort)
    start = max(first.start, assessment.spec.partitions.start_date)
    if last.end < start:
        return None
    return CohortWindow(outcomes.cohort, start, last.end)


def _estimates(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    cohort: CohortWindow,
    today: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimated group metrics and disparities of the cohort (refused per group where the score is
    not calibrated on the reference window)."""
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None and outcomes.estimate is not None and b.score is not None
    reference = _reference_window(assessment, cohort, today)
    refusals: dict[tuple[str, str], str | None] = {}
    label = "none"
    if reference is not None:
        label = f"{reference.start.isoformat()}..{reference.end.isoformat()}"
        try:
            with _cohort_view(conn, assessment, reference, labelled=True) as view:
                realised, _, _ = fairness_frames(
                    conn, assessment, view, b, reference.start.isoformat()
                )
            refusals = calibration_refusals(
                realised, bound=outcomes.estimate.calibration_bound, window=label
            )
        except DataContractError:
            refusals = {}  # no labelled decisions in the reference window: every estimate refused
    with _cohort_view(conn, assessment, cohort, labelled=False) as view:
        cells = _decision_cells(conn, assessment, view, cohort)
    metrics = estimated_performance(
        cells,
        b.feature_sets,
        refusals,
        min_group_size=b.min_group_size,
        window=label,
        level=outcomes.estimate.level,
    )
    # the groups compared are those counted: each group's rows, as the estimates' ``n``
    counts = (
        metrics.drop_duplicates(["feature_set", "group_key"])
        .assign(metric="count", reason=None, detail=None)
        .assign(value=lambda f: f["n"].astype("float64"))
    )
    gaps = disparities(
        pd.concat([counts, metrics], ignore_index=True),
        b.feature_sets,
        reference_groups=spec.fairness.reference_groups,
        declared_groups={f.name: f.values for f in b.sensitive_features},
    ).assign(ci_low=float("nan"), ci_high=float("nan"), detail=ESTIMATED_GAP)
    return metrics, estimated_disparity_intervals(metrics, gaps, level=outcomes.estimate.level)


def _decision_cells(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, view: str, cohort: CohortWindow
) -> pd.DataFrame:
    """The cohort's cells by decision and score, whatever its outcomes (the label is not read)."""
    b = assessment.spec.bindings
    cells = group_cells(
        conn,
        view,
        b.model_copy(update={"label": b.prediction}),
        partition_key=cohort.start.isoformat(),
        positive_label=assessment.spec.model.positive_label,
    )
    return cells.frame


def compute_outcomes(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    *,
    today: dt.date | None = None,
) -> OutcomeResults:
    """Outcome-based results of the partition's cohort, written to ``impact.outcome_group_metrics``,
    ``impact.outcome_disparities`` and ``impact.label_coverage``.

    Realised metrics are computed on the cohort's decisions that have an outcome, whether or not
    the cohort has matured (``matured`` says which); estimates (when declared and a score is bound)
    only for a cohort that has not.

    Raises:
        DataContractError: The outcomes break their contract (recorded as the failed check
            ``outcomes_contract``; the decision-time results of the partition are untouched).
    """
    spec = assessment.spec
    outcomes, b = spec.outcomes, spec.bindings
    assert outcomes is not None
    today = today or evaluation_day(assessment)
    cohort = cohort_of(_day(partition_key), outcomes.cohort)
    ensure_joined_view(conn, assessment)
    violation, warning = check_outcomes(conn, assessment, cohort)
    table = outcomes_table(assessment)
    record_builtin_check(
        conn,
        assessment,
        partition_key,
        run_id,
        table=table,
        check=OUTCOMES_CONTRACT,
        expectation="impact_assets.outcomes_contract",
        message=violation,
        blocking=False,
    )
    if outcomes.table is not None:
        record_builtin_check(
            conn,
            assessment,
            partition_key,
            run_id,
            table=table,
            check=UNKNOWN_OUTCOMES,
            expectation="impact_assets.outcomes_match_decisions",
            message=warning,
            blocking=False,
            severity="warn",
        )
    if violation:
        raise DataContractError(
            violation, context={"table": table, "cohort": cohort.key, "partition": partition_key}
        )
    with _cohort_view(conn, assessment, cohort, labelled=False) as view:
        coverage = label_coverage(
            conn,
            view,
            None,
            b,
            cohort,
            observed_for=outcomes.observed_for,
            positive_label=spec.model.positive_label,
        )
    overall = coverage[(coverage["feature_set"] == OVERALL)]["coverage"]
    share = None if overall.empty or pd.isna(overall.iloc[0]) else float(overall.iloc[0])
    matures_on = cohort.matures_on(outcomes.maturity_days)
    matured = today >= matures_on or (
        outcomes.min_coverage is not None and share is not None and share >= outcomes.min_coverage
    )
    try:
        with _cohort_view(conn, assessment, cohort, labelled=True) as view:
            metrics, gaps, _ = fairness_frames(conn, assessment, view, b, cohort.start.isoformat())
        metrics, gaps = metrics.assign(basis="realised"), gaps.assign(basis="realised")
    except DataContractError:  # no outcome known yet
        metrics, gaps = pd.DataFrame(), pd.DataFrame()
    if not matured and outcomes.estimate is not None and b.score is not None:
        est_metrics, est_gaps = _estimates(conn, assessment, cohort, today)
        metrics = pd.concat([metrics, est_metrics.assign(basis="estimated")], ignore_index=True)
        gaps = pd.concat([gaps, est_gaps.assign(basis="estimated")], ignore_index=True)
    known = cohort_outcomes(conn, assessment, cohort).get(cohort.key)
    version = known.fingerprint if known is not None else "none"
    keys = result_keys(conn, assessment, partition_key, run_id)
    cohort_keys = {
        "cohort_key": cohort.key,
        "cohort_start": cohort.start,
        "cohort_end": cohort.end,
        "matures_on": matures_on,
    }
    written = {
        "outcome_group_metrics": metrics.assign(
            **keys, **cohort_keys, matured=matured, outcomes_version=version
        ),
        "outcome_disparities": gaps.assign(
            **keys, **cohort_keys, matured=matured, outcomes_version=version
        ),
        "label_coverage": coverage.assign(**keys, **cohort_keys),
    }
    conn.execute("BEGIN TRANSACTION")
    try:
        for name, frame in written.items():
            conn.execute(
                f"DELETE FROM {SCHEMA}.{name} WHERE run_id = ? AND assessment_id = ? AND partition_key = ?",
                [run_id, assessment.id, partition_key],
            )
            if not frame.empty:
                append_frame(conn, name, frame)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return OutcomeResults(cohort, matured, matures_on, share, version, metrics, gaps, coverage)


def cohort_state(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    *,
    today: dt.date | None = None,
) -> CohortState:
    """What the newest outcome results say of the partition's cohort, maturity judged on ``today``."""
    outcomes = assessment.spec.outcomes
    assert outcomes is not None
    today = today or evaluation_day(assessment)
    cohort = cohort_of(_day(partition_key), outcomes.cohort)
    newest = """WHERE assessment_id = ? AND cohort_key = ?
        QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()"""
    params = [assessment.id, cohort.key]
    coverage = conn.execute(f"SELECT * FROM {SCHEMA}.label_coverage {newest}", params).df()
    overall = coverage[coverage["feature_set"] == OVERALL]["coverage"]
    share = None if overall.empty or pd.isna(overall.iloc[0]) else float(overall.iloc[0])
    matures_on = cohort.matures_on(outcomes.maturity_days)
    matured = today >= matures_on or (
        outcomes.min_coverage is not None and share is not None and share >= outcomes.min_coverage
    )
    tables = {
        name: conn.execute(f"SELECT * FROM {SCHEMA}.outcome_{name} {newest}", params).df()
        for name in ("group_metrics", "disparities")
    }
    contract = latest_quality(conn, assessment, partition_key)
    broken = contract[(contract["check_name"] == OUTCOMES_CONTRACT) & ~contract["success"]]
    return CohortState(
        cohort_key=cohort.key,
        matured=matured,
        matures_on=matures_on,
        coverage=share,
        realised={
            **{n: t[t["basis"] == "realised"] for n, t in tables.items()},
            "label_coverage": coverage,
        },
        estimated={n: t[t["basis"] == "estimated"] for n, t in tables.items()},
        violation=None if broken.empty else str(broken.iloc[0]["observed_value"]),
    )
