"""KPIs, cost-benefit and drift on one 10M-row partition, against pandas + SciPy on the raw rows.

Usage:  .venv/bin/python bench/analytics.py [--rows 10000000] [--reference-rows 1000000]

Builds a DuckDB file with a scored table shaped like the demo's (the demo spec's KPIs and cost-benefit
apply to it) and a Parquet training snapshot, then times, in this run:

* ours: :func:`compute_kpis` (3 KPIs + 6 cost-benefit results, overall and for 5 feature sets) and
  :func:`column_drift` on 3 numeric and 4 categorical columns (PSI, KS, chi-square, Jensen-Shannon),
  all in DuckDB;
* the reference: the same numbers from the rows in pandas (a groupby per feature set) and SciPy
  (``ks_2samp``, ``chi2_contingency``), as a notebook would compute them.

Prints wall time and peak RSS of each, the speed-up, and the largest difference between the two.
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
from scipy import stats

from impact_assets import ProjectPaths, load_assessment
from impact_assets.analytics import DriftColumn, column_drift, compute_kpis

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-03-02"
NUMERIC = ["score", "credit_amount", "duration_months"]
CATEGORICAL = ["repaid", "sex", "age_band", "foreign_worker"]


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _table(conn: duckdb.DuckDBPyConnection, name: str, rows: int, seed: int, shift: float) -> None:
    conn.execute(
        f"""CREATE TABLE {name} AS
        SELECT DATE '{DAY}' AS application_date,
               CASE WHEN h % 3 = 0 THEN 'female' ELSE 'male' END AS sex,
               ['<25', '25-39', '40-59', '60+'][CAST(1 + (h // 7) % 4 AS BIGINT)] AS age_band,
               CASE WHEN (h // 11) % 25 = 0 THEN 'yes' ELSE 'no' END AS foreign_worker,
               round(250 + ((h // 13) % 10000) * (1.5 + {shift}), 0) AS credit_amount,
               CAST(6 + (h // 17) % 42 AS INTEGER) AS duration_months,
               least(1.0, greatest(0.0, ((h // 19) % 1000) / 1000.0 + {shift} / 10)) AS score,
               CAST((h // 23) % 10 < 7 AS INTEGER) AS repaid
        FROM (SELECT hash(i + {seed}) AS h FROM range({rows}) t(i))"""
    )
    conn.execute(f"ALTER TABLE {name} ADD COLUMN approved INTEGER")
    conn.execute(f"UPDATE {name} SET approved = CAST(score >= 0.5 AS INTEGER)")


def _ours(conn, spec) -> tuple[pd.DataFrame, dict]:
    kpis = compute_kpis(conn, "scored", spec, DAY)
    drift = {}
    for column in NUMERIC + CATEGORICAL:
        kind = DriftColumn(column, "feature", numeric=column in NUMERIC)
        for row in column_drift(conn, f"(SELECT {column} FROM scored)", "reference", kind):
            drift[(column, row["statistic"])] = row["value"]
    return kpis, drift


def _reference(conn, spec) -> tuple[dict, dict]:
    rows = conn.execute("SELECT * FROM scored").df()
    ref = conn.execute("SELECT * FROM reference").df()
    tp = (rows.approved == 1) & (rows.repaid == 1)
    fp = (rows.approved == 1) & (rows.repaid == 0)
    fn = (rows.approved == 0) & (rows.repaid == 1)
    months = rows.duration_months / 12
    rows = rows.assign(
        _rate=rows.approved,
        _loss=np.where(rows.approved == 1, (1 - rows.score) * rows.credit_amount * 0.6, 0),
        _volume=np.where(rows.approved == 1, rows.credit_amount, 0),
        _net=np.where(tp, 0.08 * rows.credit_amount * months, 0)
        + np.where(fp, -0.6 * rows.credit_amount, 0)
        + np.where(fn, -0.08 * rows.credit_amount * months, 0),
    )
    kpis = {}
    for name, members in spec.bindings.feature_sets.items():
        grouped = rows.groupby(list(members)) if members else rows.groupby(lambda _: "overall")
        agg = grouped.agg(
            approval_rate=("_rate", "mean"),
            expected_default_loss=("_loss", "sum"),
            approved_volume=("_volume", "sum"),
            net_benefit=("_net", "sum"),
        )
        for key, values in agg.iterrows():
            group = "×".join(key) if isinstance(key, tuple) else str(key)
            for kpi, value in values.items():
                kpis[(kpi, name, group)] = value
    drift = {}
    for column in NUMERIC:
        drift[(column, "ks")] = stats.ks_2samp(rows[column], ref[column]).statistic
    for column in CATEGORICAL:
        table = pd.crosstab(
            np.r_[np.zeros(len(rows)), np.ones(len(ref))], np.r_[rows[column], ref[column]]
        )
        drift[(column, "chi_square")] = stats.chi2_contingency(table, correction=False)[0]
    return kpis, drift


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    spec = load_assessment(
        REPO / "assessments" / "credit_scoring.yaml", ProjectPaths.for_project(REPO)
    ).spec
    with tempfile.TemporaryDirectory() as folder:
        conn = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        _table(conn, "scored", args.rows, 0, 0.0)
        _table(conn, "reference_rows", args.reference_rows, 1, 0.1)
        conn.execute(f"COPY reference_rows TO '{folder}/reference.parquet' (FORMAT parquet)")
        conn.execute(
            f"CREATE VIEW reference AS SELECT * FROM read_parquet('{folder}/reference.parquet')"
        )
        conn.execute("CHECKPOINT")
        print(f"{args.rows:,} scored rows, {args.reference_rows:,} reference rows")
        start = time.perf_counter()
        kpis, drift = _ours(conn, spec)
        ours = time.perf_counter() - start
        print(f"ours (DuckDB):           {ours:8.2f} s   peak RSS {_peak_gb():.2f} GB")
        if args.skip_reference:
            return
        start = time.perf_counter()
        ref_kpis, ref_drift = _reference(conn, spec)
        theirs = time.perf_counter() - start
        print(f"pandas + SciPy on rows:  {theirs:8.2f} s   peak RSS {_peak_gb():.2f} GB")
        print(f"speed-up: {theirs / ours:.1f}x")
        got = kpis.set_index(["kpi", "feature_set", "group_key"])["value"]
        diffs = [
            abs(got[key] - value) / max(1.0, abs(value))
            for key, value in ref_kpis.items()
            if key in got.index and got[key] is not None
        ]
        diffs += [
            abs(drift[key] - value) / max(1.0, abs(value)) for key, value in ref_drift.items()
        ]
        print(f"largest relative difference over {len(diffs)} numbers: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
