"""Business KPIs, drift, scenarios, sensitivity and the causal estimate of a partition."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

import duckdb
import pandas as pd

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
from impact_assets.engine import SparkEngine
from impact_assets.errors import ModelRegistryError
from impact_assets.fairness import MISSING_GROUP, group_key_sql
from impact_assets.modeling import (
    SCORED_ID,
    SCORED_SCORE,
    linear_terms_sql,
    predict_scores,
    scorecard_scores_sql,
    spark_scores,
)
from impact_assets.pipeline._engine import each_on_a_cursor, row_engine
from impact_assets.pipeline._outcomes import scored_relation
from impact_assets.pipeline._results import replace_rows, result_keys
from impact_assets.spec import ScenarioSpec
from impact_assets.sql import ident, literal, qualified, relation_types, with_columns_replaced


def compute_business_kpis(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> pd.DataFrame:
    """The spec's KPIs and cost-benefit on a partition, written to ``impact.kpis``."""
    relation = scored_relation(conn, assessment)
    frame = compute_kpis(row_engine(conn, assessment), relation, assessment.spec, partition_key)
    rows = frame.assign(**result_keys(conn, assessment, partition_key, run_id))
    replace_rows(conn, "kpis", assessment, partition_key, run_id, rows)
    return frame


NO_REFERENCE = "no training snapshot is kept for model version {version} in {registry}"

NOT_IN_REFERENCE = "column {column!r} is not in the reference snapshot"


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
    keys = result_keys(conn, assessment, partition_key, run_id)
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
        read = (
            scored_relation(conn, assessment)
            if table == bindings.scored_table
            else qualified(assessment.schema, table)
        )
        current = f"(SELECT {ident(column)} FROM {read} {where})"
        measured.append((base, DriftColumn(column, role, numeric), current))

    def measure(on: duckdb.DuckDBPyConnection, job: tuple[dict, DriftColumn, str]) -> list[dict]:
        base, column, current = job
        reference_rows = f"(SELECT {ident(column.name)} FROM {ref_relation})"
        kind = "numeric" if column.numeric else "categorical"
        return [
            {**base, "kind": kind, **stat}
            for stat in column_drift(on, current, reference_rows, column, bins=drift.bins)
        ]

    for found in each_on_a_cursor(engine, measure, measured):
        rows += found
    frame = pd.DataFrame(rows)
    replace_rows(conn, "drift", assessment, partition_key, run_id, frame.assign(**keys))
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
    relation = scored_relation(conn, assessment)
    keys = result_keys(conn, assessment, partition_key, run_id)
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
    replace_rows(conn, "scenarios", assessment, partition_key, run_id, frame.assign(**keys))
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
    keys = result_keys(conn, assessment, partition_key, run_id)
    model, entry = registry.load(str(keys["model_version"]).split("+")[-1])
    used = list(entry.metadata.get("features", []))
    members = list(bindings.feature_sets[watch.feature_set])
    scored = scored_relation(conn, assessment)
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
    replace_rows(conn, "sensitivity", assessment, partition_key, run_id, result.assign(**keys))
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
    relation = scored_relation(conn, assessment)
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
    keys = result_keys(conn, assessment, partition_key, run_id)
    replace_rows(conn, "causal_estimates", assessment, partition_key, run_id, frame.assign(**keys))
    return frame
