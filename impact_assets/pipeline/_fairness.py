"""Group metrics, disparities and their intervals for a partition, and the contract the scored rows
must meet first.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.fairness import (
    BOOTSTRAP_DETAIL,
    GroupCells,
    bootstrap_intervals,
    disparities,
    group_cells,
    group_metrics,
    score_auc,
)
from impact_assets.pipeline._engine import each_on_a_cursor, row_engine
from impact_assets.pipeline._quality import CONTRACT_CHECK, record_builtin_check
from impact_assets.pipeline._results import result_keys
from impact_assets.spec import DECISION_TIME_DISPARITIES, DECISION_TIME_METRICS, Bindings
from impact_assets.sql import qualified
from impact_assets.storage import SCHEMA, append_frame


@dataclass(frozen=True)
class FairnessResults:
    group_metrics: pd.DataFrame
    disparities: pd.DataFrame
    model_version: str
    data_version: str
    rows: int


def fairness_frames(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    relation: str,
    bindings: Bindings,
    partition_key: str,
    *,
    decision_time: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, GroupCells]:
    """Group metrics and disparities, with their intervals, of one partition of ``relation``.

    ``decision_time``: only what is known when the decisions are made (counts, selection rates and
    their disparities); the label is not read, so it may be NULL or absent.
    """
    spec = assessment.spec
    positive = spec.model.positive_label
    feature_sets = bindings.feature_sets
    if decision_time:  # the decision stands in for the label, whose metrics are then dropped
        bindings = bindings.model_copy(update={"label": bindings.prediction, "score": None})
    # the cells' query runs while the AUC sorts its groups, each on a cursor of its own
    cells, auc = each_on_a_cursor(
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
    if decision_time:
        metrics = metrics[metrics["metric"].isin(DECISION_TIME_METRICS)].reset_index(drop=True)
        gaps = gaps[gaps["metric"].isin(DECISION_TIME_DISPARITIES)].reset_index(drop=True)
    return metrics, gaps, cells


def compute_fairness(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, run_id: str
) -> FairnessResults:
    """Group metrics and disparities of a partition, written to ``impact.group_metrics``/``impact.disparities``.

    With outcomes that arrive late (an ``outcomes`` section), only the decision-time ones: the
    outcome-based metrics are those of the partition's cohort, once its outcomes are known
    (:func:`impact_assets.pipeline.compute_outcomes`). A re-execution within the same run replaces
    that run's rows; other runs' rows are history.
    """
    bindings = assessment.spec.bindings
    metrics, gaps, cells = fairness_frames(
        conn,
        assessment,
        qualified(assessment.schema, bindings.scored_table),
        bindings,
        partition_key,
        decision_time=assessment.spec.outcomes is not None,
    )
    keys = result_keys(conn, assessment, partition_key, run_id)
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


def record_contract(
    conn: duckdb.DuckDBPyConnection,
    assessment: Assessment,
    partition_key: str,
    run_id: str,
    message: str | None,
) -> None:
    """Record what the fairness step found of the data contract, as a blocking check.

    On a violation (``message``) the register snapshot reports every entry as ``insufficient_data``
    with this message, instead of the partition going missing from the register; ``None`` records
    that the contract holds, so a corrected partition is assessed again.
    """
    record_builtin_check(
        conn,
        assessment,
        partition_key,
        run_id,
        table=assessment.spec.bindings.scored_table,
        check=CONTRACT_CHECK,
        expectation="impact_assets.data_contract",
        message=message,
    )
