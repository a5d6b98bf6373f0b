"""The steps of an assessment partition, free of Dagster: what each asset calls.

Each function takes an open DuckDB connection and an :class:`Assessment` and returns plain results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from impact_assets.analytics import (
    DriftColumn,
    column_drift,
    compute_kpis,
    did_estimate,
    evaluate_scenarios,
    group_keys,
    permutation_sensitivity,
)
from impact_assets.assessment import Assessment
from impact_assets.engine import SparkEngine, engine_for
from impact_assets.errors import DataContractError, ModelRegistryError, SqlModelError
from impact_assets.fairness import (
    BOOTSTRAP_DETAIL,
    MISSING_GROUP,
    bootstrap_intervals,
    disparities,
    group_cells,
    group_key_sql,
    group_metrics,
    score_auc,
)
from impact_assets.modeling import (
    PREDICTIONS_TABLE,
    SCORED_ID,
    SCORED_SCORE,
    ModelVersion,
    ScoredPartition,
    fingerprint_frame,
    linear_terms_sql,
    predict_scores,
    score_partition,
    scorecard_scores_sql,
    spark_scores,
    train_classifier,
)
from impact_assets.quality import QualityResult, assessment_checks, evaluate_checks
from impact_assets.register import (
    EntryResult,
    Snapshot,
    blocked_register,
    evaluate_register,
    release_decision,
    write_snapshot,
)
from impact_assets.spec import ScenarioSpec
from impact_assets.sql import (
    MaterializedPartition,
    create_source_view,
    ensure_schema,
    ident,
    literal,
    materialize_partition,
    partition_fingerprint,
    qualified,
    relation_columns,
    relation_types,
    with_columns_replaced,
)
from impact_assets.storage import SCHEMA, append_frame, migrate

__all__ = [
    "FairnessResults",
    "blocking_failures",
    "compute_fairness",
    "data_version",
    "decide_release",
    "file_fingerprints",
    "latest_results",
    "prepare",
    "record_run_failure",
    "run_quality",
    "run_sql_model",
    "score",
    "seeded_sample",
    "snapshot_register",
    "source_fingerprints",
    "train_model",
]

UNVERSIONED = "unversioned"

T = TypeVar("T")
R = TypeVar("R")


def row_engine(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment
) -> duckdb.DuckDBPyConnection | SparkEngine:
    """Where an assessment's row-level queries run: ``conn`` itself, or its Spark engine.

    Results are written through ``conn`` either way. The Spark engine is made once per process.
    """
    return spark_engine(assessment) if assessment.spec.engine.kind == "spark" else conn


def spark_engine(assessment: Assessment) -> SparkEngine:
    """The assessment's Spark engine, its sources and written tables registered in its catalog."""
    engine = engine_for(assessment.spec.engine.spark, assessment.schema, assessment.paths.expand)
    if not engine.registered:
        for name, source in assessment.spec.sources.items():
            engine.expose_source(name, str(assessment.source_path(name)), source.format)
        engine.register_tables([*assessment.sql.models, PREDICTIONS_TABLE])
        engine.registered = True
    return engine


def prepare(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, *, sources: bool = True
) -> None:
    """Migrate the results schema, create the data schema and (re)create the source views."""
    migrate(conn)
    ensure_schema(conn, assessment.schema)
    conn.execute(f"SET search_path = {literal(assessment.schema)}")
    if sources and assessment.spec.engine.kind == "duckdb":
        for name, source in assessment.spec.sources.items():
            create_source_view(
                conn, assessment.schema, name, assessment.source_path(name), source.format
            )


#: Source fingerprints of a partition as first taken in a run, by (run, assessment, partition).
_RUN_FINGERPRINTS: OrderedDict[tuple[str, str, str], dict[str, dict[str, str]]] = OrderedDict()


def source_fingerprints(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str | None = None,
    run_id: str | None = None,
) -> dict[str, dict[str, str]]:
    """Content fingerprint of each source, per partition: ``{source: {partition: fingerprint}}``.

    With ``run_id`` (and a partition) the fingerprints are taken once per run in a process: every
    step of the run then reports the data version of the rows its SQL models read, and the sources
    (a full hash of every row) are not read again by each step.
    """
    key = (run_id, assessment.id, partition_key) if run_id and partition_key else None
    if key in _RUN_FINGERPRINTS:
        return _RUN_FINGERPRINTS[key]
    if assessment.spec.engine.kind == "spark":
        prints = _spark_fingerprints(assessment, partition_key)
    else:
        prints = {
            name: partition_fingerprint(
                conn,
                qualified(assessment.schema, name),
                assessment.source_partition_column(name),
                partition_key,
            )
            for name in assessment.spec.sources
        }
    if key is not None:
        _RUN_FINGERPRINTS[key] = prints
        while len(_RUN_FINGERPRINTS) > 64:
            _RUN_FINGERPRINTS.popitem(last=False)
    return prints


def _spark_fingerprints(
    assessment: Assessment, partition_key: str | None = None
) -> dict[str, dict[str, str]]:
    engine = spark_engine(assessment)
    return {
        name: engine.fingerprint(name, assessment.source_partition_column(name), partition_key)
        for name in assessment.spec.sources
    }


def file_fingerprints(assessment: Assessment) -> dict[str, dict[str, str]]:
    """Per-partition fingerprints of every source read straight from its files (no results database).

    The same function of the same rows as :func:`source_fingerprints`, so a sensor and a run agree.
    """
    if assessment.spec.engine.kind == "spark":
        try:
            return _spark_fingerprints(assessment)
        except SqlModelError:
            return {name: {} for name in assessment.spec.sources}  # no files yet
    with duckdb.connect() as conn:
        ensure_schema(conn, assessment.schema)
        prints = {}
        for name, source in assessment.spec.sources.items():
            try:
                create_source_view(
                    conn, assessment.schema, name, assessment.source_path(name), source.format
                )
            except SqlModelError:
                prints[name] = {}  # no files yet
                continue
            prints[name] = partition_fingerprint(
                conn, qualified(assessment.schema, name), assessment.source_partition_column(name)
            )
    return prints


RUN_FAILURE_ENTRY = "__assessment_run__"


def record_run_failure(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    *,
    run_id: str,
    partition_key: str | None,
    message: str,
    at: dt.datetime | None = None,
) -> str:
    """Record a failed assessment run: ``impact.runs`` row ``failed`` and a governance action for the owners.

    One action stays open per assessment for failed runs; later failures are recorded on it as events.
    Returns the action id.
    """
    at = at or dt.datetime.now(dt.UTC)
    owner = assessment.spec.owners[0]
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"INSERT INTO {SCHEMA}.runs (run_id, assessment_id, partition_key, model_version, data_version, started_at, finished_at, status) "
            "VALUES (?, ?, ?, 'unknown', 'unknown', ?, ?, 'failed') ON CONFLICT DO UPDATE SET status = 'failed', finished_at = excluded.finished_at",
            [run_id, assessment.id, partition_key or "", at, at],
        )
        existing = conn.execute(
            f"SELECT action_id FROM {SCHEMA}.governance_actions WHERE assessment_id = ? AND entry_id = ? AND status = 'open'",
            [assessment.id, RUN_FAILURE_ENTRY],
        ).fetchall()
        if existing:
            action_id = existing[0][0]
            conn.execute(
                f"UPDATE {SCHEMA}.governance_actions SET breach_count = breach_count + 1, last_breach_at = ? WHERE action_id = ?",
                [at, action_id],
            )
        else:
            action_id = str(uuid.uuid4())
            conn.execute(
                f"""INSERT INTO {SCHEMA}.governance_actions
                    (action_id, assessment_id, entry_id, owner, action_type, opened_at, due_at, status, resolved_at, opened_snapshot_id,
                     resolved_snapshot_id, breach_count, last_breach_at, resolution_evidence, frameworks)
                    VALUES (?, ?, ?, ?, 'review', ?, ?, 'open', NULL, NULL, NULL, 1, ?, NULL, [])""",
                [
                    action_id,
                    assessment.id,
                    RUN_FAILURE_ENTRY,
                    owner,
                    at,
                    at + dt.timedelta(days=1),
                    at,
                ],
            )
        conn.execute(
            f"INSERT INTO {SCHEMA}.governance_action_events VALUES (?, 'run_failed', NULL, ?, ?)",
            [action_id, at, f"run {run_id} of partition {partition_key or '-'} failed: {message}"],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return action_id


def data_version(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str | None = None,
) -> str:
    """One fingerprint of every source's rows in a partition (taken once per run with ``run_id``)."""
    prints = source_fingerprints(conn, assessment, partition_key, run_id)
    text = ";".join(f"{name}={prints[name].get(partition_key, 'empty')}" for name in sorted(prints))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_sql_model(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, name: str, partition_key: str
) -> MaterializedPartition:
    """Materialize one partition of a SQL model."""
    rows = row_engine(conn, assessment)
    if isinstance(rows, SparkEngine):
        return rows.materialize(
            assessment.sql.models[name],
            partition_column=assessment.spec.bindings.partition_column,
            partition_key=partition_key,
        )
    return materialize_partition(
        conn,
        assessment.sql.models[name],
        schema=assessment.schema,
        partition_column=assessment.spec.bindings.partition_column,
        partition_key=partition_key,
    )


def score(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> ScoredPartition:
    """Score a partition with the registry's latest model version."""
    registry = assessment.registry
    scoring = assessment.spec.model.registry
    if registry is None or scoring is None:
        raise ModelRegistryError(f"assessment {assessment.id!r} declares no model registry")
    version = registry.latest(usable=True)
    model, entry = registry.load(version.version)
    return score_partition(
        row_engine(conn, assessment),
        model,
        model_version=entry.version,
        trained_features=entry.metadata.get("features", []),
        schema=assessment.schema,
        features_table=scoring.features_table,
        id_column=scoring.id_column,
        features=scoring.features,
        partition_column=assessment.spec.bindings.partition_column,
        partition_key=partition_key,
        decision_threshold=scoring.decision_threshold,
    )


@dataclass(frozen=True)
class FairnessResults:
    group_metrics: pd.DataFrame
    disparities: pd.DataFrame
    model_version: str
    data_version: str
    rows: int


def _model_version_in(
    conn: duckdb.DuckDBPyConnection, relation: str, assessment: Assessment, partition_key: str
) -> str:
    columns = assessment.sql.columns.get(assessment.spec.bindings.scored_table) or ()
    if "model_version" not in columns:
        return UNVERSIONED
    rows = conn.execute(
        f"SELECT DISTINCT CAST(model_version AS VARCHAR) FROM {relation} "
        f"WHERE CAST({ident(assessment.spec.bindings.partition_column)} AS DATE) = CAST(? AS DATE) ORDER BY 1",
        [partition_key],
    ).fetchall()
    return "+".join(str(r[0]) for r in rows) or UNVERSIONED


def compute_fairness(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> FairnessResults:
    """Group metrics and disparities of a partition, written to ``impact.group_metrics``/``impact.disparities``.

    A re-execution within the same run replaces that run's rows; other runs' rows are history.
    """
    spec = assessment.spec
    bindings = spec.bindings
    relation = qualified(assessment.schema, bindings.scored_table)
    positive = spec.model.positive_label
    feature_sets = bindings.feature_sets
    # the cells' query runs while the AUC sorts its groups, each on a cursor of its own
    cells, auc = _each_on_a_cursor(
        row_engine(conn, assessment),
        lambda engine, compute: compute(engine),
        [
            lambda engine: group_cells(
                engine, relation, bindings, partition_key=partition_key, positive_label=positive
            ),
            lambda engine: score_auc(
                engine,
                relation,
                bindings,
                feature_sets,
                partition_key=partition_key,
                positive_label=positive,
            ),
        ],
    )
    metrics = group_metrics(
        cells.frame,
        feature_sets,
        min_group_size=bindings.min_group_size,
        auc=auc,
        calibration_bins=spec.fairness.calibration_bins,
    )
    gaps = disparities(
        metrics,
        feature_sets,
        reference_groups=spec.fairness.reference_groups,
        declared_groups={f.name: f.values for f in bindings.sensitive_features},
    ).assign(detail=None)
    boot = spec.fairness.bootstrap
    if boot.resamples:
        group_ci, gap_ci = bootstrap_intervals(
            cells.frame,
            feature_sets,
            metrics,
            resamples=boot.resamples,
            level=boot.level,
            seed=boot.seed,
            calibration_bins=spec.fairness.calibration_bins,
            reference_groups=spec.fairness.reference_groups,
        )
        note = BOOTSTRAP_DETAIL.format(
            resamples=boot.resamples, level=boot.level * 100, seed=boot.seed
        )
        metrics = metrics.merge(group_ci, on=["feature_set", "group_key", "metric"], how="left")
        metrics["detail"] = [
            f"{d}; {note}" if isinstance(d, str) else note for d in metrics["detail"]
        ]
        gaps = gaps.merge(
            gap_ci, on=["feature_set", "metric", "method", "relative_to"], how="left"
        ).assign(detail=note)
    else:
        metrics = metrics.assign(ci_low=float("nan"), ci_high=float("nan"))
        gaps = gaps.assign(ci_low=float("nan"), ci_high=float("nan"))
    for frame in (metrics, gaps):
        undefined = frame["value"].isna()
        frame.loc[undefined, ["ci_low", "ci_high"]] = float("nan")
    keys = _result_keys(conn, assessment, partition_key, run_id)
    metrics_rows = metrics.assign(**keys)
    gaps_rows = gaps.assign(**keys)
    conn.execute("BEGIN TRANSACTION")
    try:
        for table in ("group_metrics", "disparities"):
            conn.execute(
                f"DELETE FROM {SCHEMA}.{table} WHERE run_id = ? AND assessment_id = ? AND partition_key = ?",
                [run_id, assessment.id, partition_key],
            )
        append_frame(conn, "group_metrics", metrics_rows)
        append_frame(conn, "disparities", gaps_rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return FairnessResults(metrics, gaps, keys["model_version"], keys["data_version"], cells.rows)


def _replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    rows: pd.DataFrame,
) -> None:
    """Replace this run's rows of a partition in ``impact.<table>``, in one transaction."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"DELETE FROM {SCHEMA}.{table} WHERE run_id = ? AND assessment_id = ? AND partition_key = ?",
            [run_id, assessment.id, partition_key],
        )
        append_frame(conn, table, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _result_keys(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> dict[str, object]:
    relation = qualified(assessment.schema, assessment.spec.bindings.scored_table)
    return {
        "run_id": run_id,
        "assessment_id": assessment.id,
        "partition_key": partition_key,
        "model_version": _model_version_in(
            row_engine(conn, assessment), relation, assessment, partition_key
        ),
        "data_version": data_version(conn, assessment, partition_key, run_id),
        "computed_at": dt.datetime.now(dt.UTC),
    }


def compute_business_kpis(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> pd.DataFrame:
    """The spec's KPIs and cost-benefit on a partition, written to ``impact.kpis``."""
    relation = qualified(assessment.schema, assessment.spec.bindings.scored_table)
    frame = compute_kpis(row_engine(conn, assessment), relation, assessment.spec, partition_key)
    rows = frame.assign(**_result_keys(conn, assessment, partition_key, run_id))
    _replace_rows(conn, "kpis", assessment, partition_key, run_id, rows)
    return frame


NO_REFERENCE = "no training snapshot is kept for model version {version} in {registry}"
NOT_IN_REFERENCE = "column {column!r} is not in the reference snapshot"


def _each_on_a_cursor(
    engine: duckdb.DuckDBPyConnection,
    work: Callable[[duckdb.DuckDBPyConnection, T], R],
    items: Sequence[T],
    *,
    threads: int = 2,
) -> list[R]:
    """``work(connection, item)`` of every item, in order, ``threads`` items at a time.

    On DuckDB each thread works on a cursor of its own: DuckDB's scans and numpy's sorts release the
    GIL, so one column's Python work overlaps another's query. A Spark session takes jobs from several
    threads, so one query's planning and scheduling overlap another's run.
    """
    if len(items) < 2:
        return [work(engine, item) for item in items]
    if not isinstance(engine, duckdb.DuckDBPyConnection):
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda item: work(engine, item), items))
    local = threading.local()
    cursors: list[duckdb.DuckDBPyConnection] = []

    def run(item: T) -> R:
        if not hasattr(local, "cursor"):
            local.cursor = engine.cursor()
            cursors.append(local.cursor)
        return work(local.cursor, item)

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, items))
    finally:  # every task has ended when the pool has shut down
        for cursor in cursors:
            cursor.close()


def compute_drift(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> pd.DataFrame:
    """Drift of a partition against its model version's training snapshot, written to ``impact.drift``.

    Compared: the spec's drift columns (default: the model's features), the score, the label (its rate)
    and each sensitive feature (the group mix). A column is read from the scored table, else from the
    features table the model scores.
    """
    spec = assessment.spec
    drift = spec.analytics.drift
    registry = assessment.registry
    keys = _result_keys(conn, assessment, partition_key, run_id)
    if drift is None or registry is None:
        return pd.DataFrame()
    bindings = spec.bindings
    scoring = spec.model.registry
    version = str(keys["model_version"]).split("+")[-1]
    reference = registry.reference(version) if version in registry.versions() else None
    features = list(drift.columns or scoring.features)
    wanted = [(c, "feature") for c in features]
    wanted += [(bindings.score, "score")] if bindings.score else []
    wanted += [(bindings.label, "label")]
    wanted += [(f.name, "group") for f in bindings.sensitive_features]
    where = f"WHERE CAST({ident(bindings.partition_column)} AS DATE) = CAST({literal(partition_key)} AS DATE)"
    scored_columns = set(assessment.sql.columns.get(bindings.scored_table) or ())
    rows: list[dict] = []
    ref_types: dict[str, str] = {}
    engine = row_engine(conn, assessment)
    if reference is not None:
        ref_relation = f"read_parquet({literal(str(reference))})"
        ref_types = relation_types(engine, ref_relation)
    measured: list[tuple[dict, DriftColumn, str]] = []
    for column, role in dict.fromkeys(wanted):
        table = bindings.scored_table if column in scored_columns else scoring.features_table
        base = {"column_name": column, "role": role, "reference": str(reference or "")}
        if reference is None or column not in ref_types:
            why = (
                NO_REFERENCE.format(version=version, registry=registry.path)
                if reference is None
                else NOT_IN_REFERENCE.format(column=column)
            )
            rows.append(
                {
                    **base,
                    "kind": "categorical",
                    "statistic": "psi",
                    "value": None,
                    "n": 0,
                    "n_reference": 0,
                    "reason": why,
                }
            )
            continue
        numeric = role in ("feature", "score") and any(
            t in ref_types[column].upper() for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")
        )
        current = f"(SELECT {ident(column)} FROM {qualified(assessment.schema, table)} {where})"
        measured.append((base, DriftColumn(column, role, numeric), current))

    def measure(on: duckdb.DuckDBPyConnection, job: tuple[dict, DriftColumn, str]) -> list[dict]:
        base, column, current = job
        reference_rows = f"(SELECT {ident(column.name)} FROM {ref_relation})"
        kind = "numeric" if column.numeric else "categorical"
        return [
            {**base, "kind": kind, **stat}
            for stat in column_drift(on, current, reference_rows, column, bins=drift.bins)
        ]

    for found in _each_on_a_cursor(engine, measure, measured):
        rows += found
    frame = pd.DataFrame(rows)
    _replace_rows(conn, "drift", assessment, partition_key, run_id, frame.assign(**keys))
    return frame


def compute_scenarios(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The spec's scenarios on a partition beside the baseline, written to ``impact.scenarios``.

    A feature shift is re-scored by the model version that scored the partition.
    """
    spec = assessment.spec
    bindings = spec.bindings
    relation = qualified(assessment.schema, bindings.scored_table)
    keys = _result_keys(conn, assessment, partition_key, run_id)
    rows = row_engine(conn, assessment)

    def rescored(scenario: ScenarioSpec) -> str:
        registry, scoring = assessment.registry, spec.model.registry
        if registry is None or scoring is None or bindings.score is None:
            raise ModelRegistryError(
                f"scenario {scenario.name!r} shifts a feature, which needs the model registry and a score",
                context={"scenario": scenario.name},
            )
        model, entry = registry.load(str(keys["model_version"]).split("+")[-1])
        used = list(entry.metadata.get("features", []))
        if scenario.column not in used:
            raise ModelRegistryError(
                f"scenario {scenario.name!r} shifts {scenario.column!r}, which model version {entry.version} does not use (features: {used})",
                context={"scenario": scenario.name},
            )
        columns = [
            f"(CAST({ident(c)} AS DOUBLE) * CAST({scenario.multiply!r} AS DOUBLE) + CAST({scenario.add!r} AS DOUBLE)) AS {ident(c)}"
            if c == scenario.column
            else ident(c)
            for c in dict.fromkeys([scoring.id_column, *used])
        ]
        day = f"CAST({literal(partition_key)} AS DATE)"
        query = (
            f"SELECT {', '.join(columns)} FROM {qualified(assessment.schema, scoring.features_table)} "
            f"WHERE CAST({ident(bindings.partition_column)} AS DATE) = {day}"
        )
        table = f"_rescored_{scenario.name}"
        scores = ident(table)
        if isinstance(rows, SparkEngine):
            shifted = spark_scores(rows, query, [], model, used, id_column=scoring.id_column)
            shifted.persist().createOrReplaceTempView(table)
            cached.append(shifted)
        elif (in_sql := scorecard_scores_sql(model, used, query, scoring.id_column)) is not None:
            scores = f"({in_sql})"  # scored as the scenario reads them: no 10M-row temp table
        else:
            shifted = predict_scores(conn, query, [], model, used, id_column=scoring.id_column)
            conn.register("_shifted", shifted)
            conn.execute(f"CREATE OR REPLACE TEMP TABLE {ident(table)} AS SELECT * FROM _shifted")
            conn.unregister("_shifted")
        # as the scoring step decides: 1 at or above the threshold, else 0
        decided = f"CASE WHEN r.{SCORED_SCORE} >= {scoring.decision_threshold!r} THEN 1 ELSE 0 END"
        return with_columns_replaced(
            rows,
            relation,
            {bindings.score: f"r.{SCORED_SCORE}", bindings.prediction: decided},
            qualifier="s.",
            tail=f"s JOIN {scores} r ON s.{ident(scoring.id_column)} = r.{SCORED_ID} "
            f"WHERE CAST(s.{ident(bindings.partition_column)} AS DATE) = {day}",
        )

    cached: list = []  # the re-scored rows Spark keeps while the scenarios read them
    try:
        frame = evaluate_scenarios(
            rows, relation, spec, partition_key, rescored=rescored, progress=progress
        )
    finally:
        for shifted in cached:
            shifted.unpersist()
    _replace_rows(conn, "scenarios", assessment, partition_key, run_id, frame.assign(**keys))
    return frame


def seeded_sample(
    engine: duckdb.DuckDBPyConnection,
    relation: str,
    params: Sequence[object],
    id_column: str,
    *,
    seed: int,
    rows: int,
) -> tuple[str, list[object]]:
    """A parenthesized query of the ``rows`` rows of ``relation`` with the smallest
    ``hash(id_column, seed)``: a seeded sample, the same on every run and engine, and all the rows
    when there are no more.

    On DuckDB a large relation is first cut to the rows whose hash lies below the value ``rows``
    rows plus a margin would stay under if hashes are uniform: the same sample, sorted from about a
    hundredth of the rows (sorting ten million rows for the smallest 100,000 takes about a second).
    Should fewer rows pass the cut, the sample is taken from all of them.

    Returns:
        The query and its parameters (``params`` first).
    """
    key = f"hash({ident(id_column)}, ?)"
    whole = f"(SELECT * FROM {relation} AS _r ORDER BY {key} LIMIT ?)", [*params, seed, rows]
    if not isinstance(engine, duckdb.DuckDBPyConnection):
        return whole
    total = engine.execute(f"SELECT count(*) FROM {relation} AS _r", list(params)).fetchall()[0][0]
    wanted = rows + 10 * math.sqrt(rows) + 100  # the count below the cut is binomial
    if total <= 2 * wanted:
        return whole
    cut = int(2**64 * wanted / total)
    passed = engine.execute(
        f"SELECT count(*) FROM {relation} AS _r WHERE {key} < ?", [*params, seed, cut]
    ).fetchall()[0][0]
    if passed < rows:
        return whole
    return (
        f"(SELECT * FROM {relation} AS _r WHERE {key} < ? ORDER BY {key} LIMIT ?)",
        [*params, seed, cut, seed, rows],
    )


def compute_sensitivity(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Permutation sensitivity of the watched disparity to each model feature, to ``impact.sensitivity``."""
    spec = assessment.spec
    bindings, scoring, watch = spec.bindings, spec.model.registry, spec.analytics.sensitivity
    registry = assessment.registry
    if watch is None or scoring is None or registry is None:
        return pd.DataFrame()
    keys = _result_keys(conn, assessment, partition_key, run_id)
    model, entry = registry.load(str(keys["model_version"]).split("+")[-1])
    used = list(entry.metadata.get("features", []))
    members = list(bindings.feature_sets[watch.feature_set])
    scored = qualified(assessment.schema, bindings.scored_table)
    features = qualified(assessment.schema, scoring.features_table)
    wanted = ", ".join(f"f.{ident(c)}" for c in dict.fromkeys(used))
    by_name = {f.name: f for f in bindings.sensitive_features}
    outcomes = ", ".join(
        f"{group_key_sql(by_name[c], qualifier='s.')} AS {ident('_g_' + c)}" for c in members
    )
    # a seeded sample of at most max_rows scored rows (all of them on smaller days), in id order
    day = f"CAST({ident(bindings.partition_column)} AS DATE) = CAST(? AS DATE)"
    # the scorecard's log-odds and its term per feature come along: permutations then skip the model
    linear = linear_terms_sql(model, used, qualifier="f.")
    terms = (
        []
        if linear is None
        else [f"{' + '.join([linear[0], *linear[1].values()])} AS _logit"]
        + [f"{sql} AS {ident('_term_' + column)}" for column, sql in linear[1].items()]
    )
    engine = row_engine(conn, assessment)
    sample, params = seeded_sample(
        engine,
        f"(SELECT * FROM {scored} WHERE {day})",
        [partition_key],
        bindings.id_column,
        seed=watch.seed,
        rows=watch.max_rows,
    )
    frame = engine.execute(
        f"WITH s AS {sample} "
        f"SELECT {', '.join([wanted, *terms])}, s.{ident(bindings.label)} AS _label, {outcomes} "
        f"FROM s JOIN (SELECT * FROM {features} WHERE {day}) f ON f.{ident(scoring.id_column)} = s.{ident(bindings.id_column)} "
        f"ORDER BY s.{ident(bindings.id_column)}",
        [*params, partition_key],
    ).df()
    logit_terms = (
        None
        if linear is None
        else frame[["_logit", *(f"_term_{c}" for c in linear[1])]]
        .rename(columns=lambda c: c.removeprefix("_term_"))
        .reindex(columns=["_logit", *used], fill_value=0.0)  # a feature the model drops: no term
    )
    positives = (
        (frame["_label"].astype(str) == str(spec.model.positive_label)).to_numpy().astype(int)
    )
    result = permutation_sensitivity(
        frame[used],
        model,
        used,
        positives=positives,
        groups=group_keys(frame, [f"_g_{c}" for c in members], MISSING_GROUP),
        threshold=scoring.decision_threshold,
        metric=watch.metric,
        min_group_size=bindings.min_group_size,
        repeats=watch.repeats,
        seed=watch.seed,
        progress=progress,
        logit_terms=logit_terms,
    ).assign(disparity=watch.metric, feature_set=watch.feature_set, n=len(frame))
    _replace_rows(conn, "sensitivity", assessment, partition_key, run_id, result.assign(**keys))
    return result


BEFORE_ROLLOUT = "partition {partition} is before the rollout on {rollout}"
NO_ROLLOUT = "no treated row has {column} = {value!r} up to partition {partition}: no rollout yet"


def _empty_estimate() -> dict[str, object]:
    empty = did_estimate(pd.DataFrame(columns=["day", "treated", "post", "mean", "var", "n"]))
    return {
        "method": "difference_in_differences",
        **{k: v for k, v in vars(empty).items() if k != "reason"},
        "value": None,
        "n": 0,
    }


def compute_causal(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> pd.DataFrame:
    """Each declared difference-in-differences estimate, as of a partition, to ``impact.causal_estimates``.

    The window runs from ``pre_days`` before the rollout to the partition (at most ``post_days`` after
    the rollout); the scored rows of the treated and comparison segments are reduced to day cells in
    DuckDB.
    """
    spec = assessment.spec
    day = ident(spec.bindings.partition_column)
    relation = qualified(assessment.schema, spec.bindings.scored_table)
    current = dt.date.fromisoformat(partition_key)
    engine = row_engine(conn, assessment)
    rows = []
    for causal in spec.analytics.causal:
        rollout = causal.rollout
        if causal.rollout_from is not None:
            marker = causal.rollout_from
            rollout = engine.execute(
                f"SELECT min(CAST({day} AS DATE)) FROM {relation} WHERE ({causal.treated}) "
                f"AND CAST({ident(marker.column)} AS VARCHAR) = ? AND CAST({day} AS DATE) <= ?",
                [marker.value, current],
            ).fetchall()[0][0]
            if rollout is None:
                rows.append(
                    {
                        "name": causal.name,
                        "reason": NO_ROLLOUT.format(
                            column=marker.column, value=marker.value, partition=partition_key
                        ),
                        "window_start": current,
                        "window_end": current,
                        **_empty_estimate(),
                    }
                )
                continue
        start = rollout - dt.timedelta(days=causal.pre_days)
        end = min(current, rollout + dt.timedelta(days=causal.post_days - 1))
        comparison = causal.comparison or f"NOT ({causal.treated})"
        cells = engine.execute(
            f"""SELECT CAST({day} AS DATE) AS day,
                       CAST(({causal.treated}) AS INTEGER) AS treated,
                       CAST(CAST({day} AS DATE) >= ? AS INTEGER) AS post,
                       avg(CAST(({causal.outcome}) AS DOUBLE)) AS mean,
                       var_samp(CAST(({causal.outcome}) AS DOUBLE)) AS var,
                       count(({causal.outcome})) AS n
                FROM {relation}
                WHERE CAST({day} AS DATE) BETWEEN ? AND ? AND (({causal.treated}) OR ({comparison}))
                GROUP BY ALL""",
            [rollout, start, end],
        ).df()
        estimate = did_estimate(cells, level=causal.level)
        reason = estimate.reason
        if current < rollout:
            estimate = did_estimate(cells.iloc[0:0], level=causal.level)
            reason = BEFORE_ROLLOUT.format(partition=partition_key, rollout=rollout)
        rows.append(
            {
                "name": causal.name,
                "method": "difference_in_differences",
                **{k: v for k, v in vars(estimate).items() if k != "reason"},
                "value": estimate.value,
                "n": estimate.n_treated + estimate.n_comparison,
                "window_start": start,
                "window_end": end,
                "reason": reason,
            }
        )
    frame = pd.DataFrame(rows)
    keys = _result_keys(conn, assessment, partition_key, run_id)
    _replace_rows(conn, "causal_estimates", assessment, partition_key, run_id, frame.assign(**keys))
    return frame


def latest_results(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> tuple[dict[str, pd.DataFrame], str, str]:
    """The newest group metrics and disparities of a partition, with their model and data versions."""
    latest = conn.execute(
        f"SELECT run_id, model_version, data_version FROM {SCHEMA}.group_metrics WHERE assessment_id = ? AND partition_key = ? "
        "ORDER BY computed_at DESC LIMIT 1",
        [assessment.id, partition_key],
    ).fetchall()
    if not latest:
        return (
            {
                "quality_results": latest_quality(conn, assessment, partition_key),
                **latest_analytics(conn, assessment, partition_key),
            },
            UNVERSIONED,
            "unknown",
        )
    run_id, model_version, version = latest[0]
    results = {
        table: conn.execute(
            f"SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ? AND run_id = ?",
            [assessment.id, partition_key, run_id],
        ).df()
        for table in ("group_metrics", "disparities")
    }
    results["quality_results"] = latest_quality(conn, assessment, partition_key)
    results.update(latest_analytics(conn, assessment, partition_key))
    return results, model_version, version


def latest_analytics(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> dict[str, pd.DataFrame]:
    """The newest run's analytics results of a partition (KPIs, drift, scenarios, sensitivity, causal)."""
    return {
        table: conn.execute(
            f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ?
                QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
            [assessment.id, partition_key],
        ).df()
        for table in ("kpis", "drift", "scenarios", "sensitivity", "causal_estimates")
    }


def latest_quality(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> pd.DataFrame:
    """The latest evaluation of each quality check on a partition."""
    return conn.execute(
        f"""SELECT * FROM {SCHEMA}.quality_results WHERE assessment_id = ? AND partition_key = ?
            QUALIFY row_number() OVER (PARTITION BY table_name, check_name ORDER BY evaluated_at DESC) = 1""",
        [assessment.id, partition_key],
    ).df()


BLOCKED_BY_QUALITY = "failed blocking data-quality checks: {checks}"
#: Built-in blocking check recorded when the fairness step itself refuses a partition's data.
CONTRACT_CHECK = "fairness_inputs_meet_the_contract"


def record_contract_violation(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    message: str,
) -> None:
    """Record a data-contract violation found by the fairness step as a failed blocking check.

    The register snapshot then reports every entry as ``insufficient_data`` with this message, instead
    of the partition going missing from the register.
    """
    append_frame(
        conn,
        "quality_results",
        pd.DataFrame(
            [
                {
                    "run_id": run_id,
                    "assessment_id": assessment.id,
                    "partition_key": partition_key,
                    "table_name": assessment.spec.bindings.scored_table,
                    "check_name": CONTRACT_CHECK,
                    "expectation": "impact_assets.data_contract",
                    "kwargs": "{}",
                    "severity": "error",
                    "blocking": True,
                    "success": False,
                    "observed_value": message,
                    "element_count": None,
                    "unexpected_count": None,
                    "unexpected_percent": None,
                    "evaluated_at": dt.datetime.now(dt.UTC),
                }
            ]
        ).astype(
            {"element_count": "Int64", "unexpected_count": "Int64", "unexpected_percent": "float64"}
        ),
    )


def snapshot_register(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> tuple[Snapshot, list[EntryResult]]:
    """Evaluate every register entry on the partition's newest results and append a snapshot.

    When a blocking data-quality check failed on the partition, no entry is evaluated on that data:
    each is ``insufficient_data`` with the failing checks as the reason.
    """
    failures = blocking_failures(conn, assessment, partition_key)
    if failures:
        version = data_version(conn, assessment, partition_key, run_id)
        evaluated = blocked_register(
            assessment.spec.register_entries, BLOCKED_BY_QUALITY.format(checks=", ".join(failures))
        )
        try:
            model_version = _model_version_in(
                conn,
                qualified(assessment.schema, assessment.spec.bindings.scored_table),
                assessment,
                partition_key,
            )
        except duckdb.Error:
            model_version = UNVERSIONED
    else:
        results, model_version, version = latest_results(conn, assessment, partition_key)
        evaluated = evaluate_register(assessment.spec.register_entries, results)
    snapshot = write_snapshot(
        conn,
        assessment_id=assessment.id,
        partition_key=partition_key,
        run_id=run_id,
        model_version=model_version,
        data_version=version,
        entries=assessment.spec.register_entries,
        results=evaluated,
        governance=assessment.spec.governance,
        impact=assessment.spec.impact_level,
    )
    return snapshot, evaluated


def _quality_relation(assessment: Assessment, table: str) -> tuple[str, str]:
    if table in assessment.spec.sources:
        return qualified(assessment.schema, table), assessment.source_partition_column(table)
    return qualified(assessment.schema, table), assessment.spec.bindings.partition_column


def partition_frame(conn: duckdb.DuckDBPyConnection, query: str, params: list) -> pd.DataFrame:
    """Rows of a query as a compact pandas frame: through Arrow, strings as categoricals.

    Ten million rows of three string columns take about 1 GB and 3 s this way, against 3 GB and 8 s
    through ``.df()`` (Python string objects). Strings are dictionary-encoded batch by batch, so only
    one batch of them is held as text. A column kept from an imported batch would keep the whole
    batch's buffers (its text too) alive, so other columns are copied out of each batch; then each
    column is joined into one array and its pieces handed back to the system before the next.
    """
    reader = conn.sql(query, params=params).to_arrow_reader(1_000_000)
    schema = reader.schema
    pieces: list[list[pa.Array]] = [[] for _ in schema]
    for batch in reader:
        for kept, array in zip(pieces, batch.columns, strict=True):
            kept.append(
                array.dictionary_encode() if _is_text(array.type) else pa.concat_arrays([array])
            )
    if not pieces[0]:
        return schema.empty_table().to_pandas()
    pool = pa.default_memory_pool()
    columns: list[pa.Array | pa.ChunkedArray] = []
    for i in range(len(pieces)):  # pandas unifies the batches' dictionaries into one categorical
        columns.append(
            pa.chunked_array(pieces[i])
            if _is_text(schema.types[i])
            else pa.concat_arrays(pieces[i])
        )
        pieces[i] = []
        pool.release_unused()
    return pa.table(columns, names=schema.names).to_pandas(split_blocks=True, self_destruct=True)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def run_quality(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    table: str,
    partition_key: str,
    run_id: str,
) -> list[QualityResult]:
    """Evaluate the expectations on one table for one partition and record them in ``impact.quality_results``.

    Only the partition's rows and the columns the expectations name are loaded (the GX frame is bounded).
    """
    checks = [
        c.for_partition(assessment.spec, partition_key)
        for c in assessment_checks(assessment.spec)
        if c.table == table
    ]
    if not checks:
        return []
    relation, partition_column = _quality_relation(assessment, table)
    columns: list[str] = []
    for check in checks:
        for key in ("column", "column_A", "column_B"):
            if key in check.kwargs and check.kwargs[key] not in columns:
                columns.append(check.kwargs[key])
        for column in check.kwargs.get("column_list", []) or []:
            if column not in columns:
                columns.append(column)
    columns = columns or [partition_column]
    engine = row_engine(conn, assessment)
    present = relation_columns(engine, relation)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataContractError(
            f"the data-quality checks on {table!r} name columns it does not have: {missing} (it has {present})",
            context={"assessment": assessment.id, "table": table, "file": assessment.source.path},
        )
    query = f"SELECT {', '.join(ident(c) for c in columns)} FROM {relation} WHERE CAST({ident(partition_column)} AS DATE) = CAST(? AS DATE)"
    frame = (  # on Spark, GX validates the Spark DataFrame: no row comes to this process
        engine.frame(query, [partition_key])
        if isinstance(engine, SparkEngine)
        else partition_frame(conn, query, [partition_key])
    )
    sensitive = {f.name for f in assessment.spec.bindings.sensitive_features}
    results = evaluate_checks(frame, checks, sensitive_columns=sensitive)
    # the frame's buffers are Arrow's, whose pool would keep them from the steps after this one
    del frame
    pa.default_memory_pool().release_unused()
    now = dt.datetime.now(dt.UTC)
    rows = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "assessment_id": assessment.id,
                "partition_key": partition_key,
                "table_name": table,
                "check_name": r.check.name,
                "expectation": r.check.expectation,
                "kwargs": r.check.kwargs_json,
                "severity": r.check.severity,
                "blocking": r.check.blocking,
                "success": r.success,
                "observed_value": r.observed_value,
                "element_count": r.element_count,
                "unexpected_count": r.unexpected_count,
                "unexpected_percent": r.unexpected_percent,
                "evaluated_at": now,
            }
            for r in results
        ]
    ).astype(
        {"element_count": "Int64", "unexpected_count": "Int64", "unexpected_percent": "float64"}
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"DELETE FROM {SCHEMA}.quality_results WHERE run_id = ? AND assessment_id = ? AND partition_key = ? AND table_name = ?",
            [run_id, assessment.id, partition_key, table],
        )
        append_frame(conn, "quality_results", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results


def blocking_failures(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str
) -> list[str]:
    """Blocking ``error`` checks whose latest evaluation on the partition failed, as ``table.check``."""
    current = {
        (c.table, c.name)
        for c in assessment_checks(assessment.spec)
        if c.blocking and c.severity == "error"
    }
    current.add((assessment.spec.bindings.scored_table, CONTRACT_CHECK))
    rows = conn.execute(
        f"""
        SELECT table_name, check_name, success, observed_value FROM {SCHEMA}.quality_results
        WHERE assessment_id = ? AND partition_key = ?
        QUALIFY row_number() OVER (PARTITION BY table_name, check_name ORDER BY evaluated_at DESC) = 1
        """,
        [assessment.id, partition_key],
    ).fetchall()
    return sorted(
        f"{table}.{name}" + (f" ({detail})" if name == CONTRACT_CHECK else "")
        for table, name, success, detail in rows
        if not success and (table, name) in current
    )


@dataclass(frozen=True)
class ReleaseDecision:
    decision: str
    model_version: str
    rollback_to: str | None
    reasons: list[str]
    snapshot_id: str


NO_SNAPSHOT = (
    "partition {partition} has no register snapshot to decide on; materialize the register first"
)
NO_ROLLBACK_TARGET = "no earlier approved version to roll back to"


def decide_release(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    *,
    decided_at: dt.datetime | None = None,
) -> ReleaseDecision:
    """Decide on the model version of the partition's newest snapshot and record it.

    ``rollback`` names the last approved version (and marks this one rolled back in the registry, so
    scoring goes back to an approved version); without one, the decision is ``hold``.
    """
    latest = conn.execute(
        f"SELECT snapshot_id, model_version FROM {SCHEMA}.register_snapshots WHERE assessment_id = ? AND partition_key = ? "
        "ORDER BY snapshot_version DESC LIMIT 1",
        [assessment.id, partition_key],
    ).fetchall()
    if not latest:
        raise ModelRegistryError(
            NO_SNAPSHOT.format(partition=partition_key), context={"assessment": assessment.id}
        )
    snapshot_id, model_version = latest[0]
    statuses = dict(
        conn.execute(
            f"SELECT entry_id, status FROM {SCHEMA}.register_entries WHERE snapshot_id = ?",
            [snapshot_id],
        ).fetchall()
    )
    decision, reasons = release_decision(
        assessment.spec.register_entries, statuses, assessment.spec.release
    )
    rollback_to = None
    if decision == "rollback":
        target = conn.execute(
            f"SELECT model_version FROM {SCHEMA}.release_decisions WHERE assessment_id = ? AND decision = 'approve' AND model_version <> ? "
            "ORDER BY decided_at DESC LIMIT 1",
            [assessment.id, model_version],
        ).fetchall()
        if target:
            rollback_to = target[0][0]
        else:
            decision, reasons = "hold", [*reasons, NO_ROLLBACK_TARGET]
    decided_at = decided_at or dt.datetime.now(dt.UTC)
    conn.execute(
        f"INSERT INTO {SCHEMA}.release_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            str(uuid.uuid4()),
            assessment.id,
            model_version,
            decision,
            decided_at,
            snapshot_id,
            partition_key,
            rollback_to,
            reasons,
        ],
    )
    registry = assessment.registry
    if registry is not None and model_version in registry.versions():
        status = {"approve": "approved", "hold": "held", "rollback": "rolled_back"}[decision]
        registry.mark(
            model_version,
            status,
            {
                "decided_at": decided_at,
                "partition": partition_key,
                "reasons": reasons,
                "rollback_to": rollback_to,
            },
        )
    return ReleaseDecision(decision, model_version, rollback_to, reasons, snapshot_id)


def train_model(
    assessment: Assessment,
    training_rows: pd.DataFrame,
    *,
    extra_features: tuple[str, ...] = (),
    note: str = "",
) -> ModelVersion:
    """Train on raw training rows passed through the assessment's own SQL, and register a version.

    The raw rows play the role of the sources; the SQL models up to the features table are run on them
    in an in-memory DuckDB, so training and scoring see features computed by the same SQL.
    ``extra_features`` (columns of the features table beyond the spec's) make a model that uses
    undeclared features, as the demo's deliberately unfair retrain does.
    """
    scoring = assessment.spec.model.registry
    registry = assessment.registry
    if scoring is None or registry is None:
        raise ModelRegistryError(
            f"assessment {assessment.id!r} declares no model registry to train into"
        )
    needed: list[str] = []

    def visit(name: str) -> None:
        for upstream in assessment.sql.upstream_models(name):
            visit(upstream)
        if name not in needed:
            needed.append(name)

    visit(scoring.features_table)
    with duckdb.connect() as conn:
        ensure_schema(conn, assessment.schema)
        for name in assessment.spec.sources:
            conn.register("_training_rows", training_rows)
            conn.execute(
                f"CREATE TABLE {qualified(assessment.schema, name)} AS SELECT * FROM _training_rows"
            )
            conn.unregister("_training_rows")
        conn.execute(f"SET search_path = {literal(assessment.schema)}")
        for name in needed:
            model = assessment.sql.models[name]
            conn.execute(
                f"CREATE TABLE {qualified(assessment.schema, name)} AS {model.sql.strip().rstrip(';')}"
            )
        frame = conn.execute(
            f"SELECT * FROM {qualified(assessment.schema, scoring.features_table)}"
        ).df()
    pipeline, metadata = train_classifier(
        frame, [*scoring.features, *extra_features], scoring.label
    )
    metadata["assessment_id"] = assessment.id
    if note:
        metadata["note"] = note
    metadata["raw_training_fingerprint"] = fingerprint_frame(training_rows)
    reference = frame.assign(
        **{
            assessment.spec.bindings.score or "score": pipeline.predict_proba(
                frame[metadata["features"]]
            )[:, 1]
        }
    )
    return registry.register(pipeline, metadata, reference)
