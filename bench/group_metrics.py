"""Group metrics at scale: DuckDB cells + fairlearn on cells vs fairlearn MetricFrame on the raw rows.

Usage:  .venv/bin/python bench/group_metrics.py [--rows 1000000] [--skip-reference]

Generates seeded rows (3 sensitive features, one intersection) in a DuckDB file, times our group
metrics and disparities, then fairlearn's MetricFrame on the same rows pulled into pandas, and prints
both times, their ratio, the largest absolute difference and peak memory (RSS) of each phase.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from impact_assets.fairness import METRIC_FUNCTIONS, disparities, group_cells, group_metrics
from impact_assets.spec import Bindings

BINDINGS = Bindings.model_validate(
    {
        "scored_table": "scored",
        "id_column": "id",
        "partition_column": "day",
        "label": "y",
        "prediction": "yhat",
        "sensitive_features": [{"name": "sex"}, {"name": "age_band"}, {"name": "region"}],
        "intersections": [["sex", "age_band"]],
        "min_group_size": 30,
    }
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(conn: duckdb.DuckDBPyConnection, rows: int) -> None:
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        f"""
        CREATE TABLE scored AS
        SELECT range AS id, DATE '2026-03-02' AS day,
               CASE WHEN random() < 0.31 THEN 'female' ELSE 'male' END AS sex,
               ['<25', '25-39', '40-59', '60+'][1 + CAST(floor(random() * 4) AS INTEGER)] AS age_band,
               ['north', 'south', 'east', 'west', 'centre'][1 + CAST(floor(random() * 5) AS INTEGER)] AS region,
               CAST(random() < 0.7 AS INTEGER) AS y,
               CAST(random() < 0.75 AS INTEGER) AS yhat
        FROM range({rows})
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-reference", action="store_true", help="Do not run fairlearn on the raw rows.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect(str(Path(tmp) / "bench.duckdb")) as conn:
        generate(conn, args.rows)
        t0 = time.perf_counter()
        cells = group_cells(conn, "scored", BINDINGS, partition_key="2026-03-02")
        metrics = group_metrics(cells.frame, BINDINGS.feature_sets, min_group_size=30)
        disparities(metrics, BINDINGS.feature_sets)
        ours = time.perf_counter() - t0
        ours_rss = peak_rss_mb()
        print(f"rows: {args.rows:,}")
        print(f"ours (DuckDB cells + fairlearn on {len(cells.frame)} cells): {ours:.2f} s, peak RSS {ours_rss:.0f} MB")
        if args.skip_reference:
            return
        raw = conn.execute("SELECT sex, age_band, region, y, yhat FROM scored").df()
    t0 = time.perf_counter()
    worst = 0.0
    for name, features in BINDINGS.feature_sets.items():
        if not features:
            continue
        frame = MetricFrame(metrics=METRIC_FUNCTIONS, y_true=raw["y"], y_pred=raw["yhat"], sensitive_features=raw[list(features)])
        mine = metrics[(metrics["feature_set"] == name) & (metrics["metric"] != "count")]
        for row in mine.itertuples():
            key = tuple(row.group_key.split("×")) if len(features) > 1 else row.group_key
            if not pd.isna(row.value):
                worst = max(worst, abs(row.value - float(frame.by_group.loc[key, row.metric])))
    reference = time.perf_counter() - t0
    print(f"fairlearn MetricFrame on the raw rows: {reference:.2f} s, peak RSS {peak_rss_mb():.0f} MB (process, includes the raw frame)")
    print(f"speed-up: {reference / ours:.1f}x   max |difference|: {worst:.2e}")
    assert np.isfinite(worst)


if __name__ == "__main__":
    main()
