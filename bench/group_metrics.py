"""Fairness at scale: our fairness step vs fairlearn's MetricFrame on the same raw rows.

Usage:  .venv/bin/python bench/group_metrics.py [--rows 10000000] [--resamples 1000] [--skip-reference]

Generates seeded rows (3 sensitive features, one intersection, a score) in a DuckDB file, then times:

* ours: per-group cells and exact AUC in DuckDB, every group metric from the cells' confusion counts,
  disparities, and the bootstrap intervals (timed on their own too);
* the reference: fairlearn ``MetricFrame`` with the same decision metrics on the raw rows in pandas,
  for every feature set.

Prints both times, their ratio, the largest absolute difference between the two, and peak memory
(RSS) after our step and after the reference (which includes the raw frame).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.exceptions import UndefinedMetricWarning

from impact_assets.fairness import (
    METRIC_FUNCTIONS,
    bootstrap_intervals,
    disparities,
    group_cells,
    group_metrics,
    score_auc,
)
from impact_assets.spec import Bindings

BINDINGS = Bindings.model_validate(
    {
        "scored_table": "scored",
        "id_column": "id",
        "partition_column": "day",
        "label": "y",
        "prediction": "yhat",
        "score": "score",
        "sensitive_features": [{"name": "sex"}, {"name": "age_band"}, {"name": "region"}],
        "intersections": [["sex", "age_band"]],
        "min_group_size": 30,
    }
)
DAY = "2026-03-02"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(conn: duckdb.DuckDBPyConnection, rows: int) -> None:
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        f"""
        CREATE TABLE scored AS
        WITH base AS (
            SELECT range AS id,
                   CASE WHEN random() < 0.31 THEN 'female' ELSE 'male' END AS sex,
                   ['<25', '25-39', '40-59', '60+'][1 + CAST(floor(random() * 4) AS INTEGER)] AS age_band,
                   ['north', 'south', 'east', 'west', 'centre'][1 + CAST(floor(random() * 5) AS INTEGER)] AS region,
                   CAST(random() < 0.7 AS INTEGER) AS y,
                   random() AS noise
            FROM range({rows})
        )
        SELECT id, DATE '{DAY}' AS day, sex, age_band, region, y,
               round(least(1.0, 0.35 * y + 0.65 * noise), 4) AS score,
               CAST(0.35 * y + 0.65 * noise >= 0.5 AS INTEGER) AS yhat
        FROM base
        """
    )


def ours(conn: duckdb.DuckDBPyConnection, resamples: int) -> tuple[pd.DataFrame, float, float, int]:
    start = time.perf_counter()
    cells = group_cells(conn, "scored", BINDINGS, partition_key=DAY)
    auc = score_auc(conn, "scored", BINDINGS, BINDINGS.feature_sets, partition_key=DAY)
    metrics = group_metrics(cells.frame, BINDINGS.feature_sets, min_group_size=30, auc=auc)
    disparities(metrics, BINDINGS.feature_sets)
    boot_start = time.perf_counter()
    bootstrap_intervals(
        cells.frame, BINDINGS.feature_sets, metrics, resamples=resamples, level=0.95, seed=0
    )
    end = time.perf_counter()
    return metrics, end - start, end - boot_start, len(cells.frame)


def reference(raw: pd.DataFrame, metrics: pd.DataFrame) -> tuple[float, float]:
    start = time.perf_counter()
    worst = 0.0
    for name, features in BINDINGS.feature_sets.items():
        sensitive = raw[list(features)] if features else pd.Series("overall", index=raw.index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            frame = MetricFrame(
                metrics=METRIC_FUNCTIONS,
                y_true=raw["y"],
                y_pred=raw["yhat"],
                sensitive_features=sensitive,
            )
        mine = metrics[
            (metrics["feature_set"] == name) & metrics["metric"].isin(list(METRIC_FUNCTIONS))
        ]
        for row in mine.itertuples():
            if pd.isna(row.value):
                continue
            expected = (
                frame.overall[row.metric]
                if not features
                else frame.by_group.loc[
                    tuple(row.group_key.split("×")) if len(features) > 1 else row.group_key,
                    row.metric,
                ]
            )
            worst = max(worst, abs(row.value - float(expected)))
    return time.perf_counter() - start, worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument(
        "--skip-reference",
        action="store_true",
        help="Do not run fairlearn on the raw rows (it takes minutes at 10M).",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        duckdb.connect(str(Path(tmp) / "bench.duckdb")) as conn,
    ):
        generate(conn, args.rows)
        metrics, seconds, boot_seconds, cells = ours(conn, args.resamples)
        ours_rss = peak_rss_mb()
        print(
            f"rows: {args.rows:,}; cells: {cells}; groups: {int((metrics['metric'] == 'count').sum())}"
        )
        print(
            f"ours: {seconds:.2f} s in all, of which {args.resamples} bootstrap resamples {boot_seconds:.2f} s; peak RSS {ours_rss:.0f} MB"
        )
        if args.skip_reference:
            return
        raw = conn.execute("SELECT sex, age_band, region, y, yhat FROM scored").df()
    ref_seconds, worst = reference(raw, metrics)
    print(
        f"fairlearn MetricFrame on the raw rows ({len(METRIC_FUNCTIONS)} metrics x {len(BINDINGS.feature_sets)} feature sets): {ref_seconds:.1f} s; "
        f"peak RSS {peak_rss_mb():.0f} MB (includes the raw frame)"
    )
    print(f"speed-up: {ref_seconds / seconds:.0f}x   max |difference|: {worst:.2e}")


if __name__ == "__main__":
    main()
