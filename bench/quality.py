"""Data quality at scale: the default suite on one 10M-row partition.

Usage:  .venv/bin/python bench/quality.py [--rows 10000000]

Times our evaluation (the partition's rows and only the checked columns loaded from DuckDB, then
Great Expectations 1.x on that pandas frame) and, as the reference in the same run, GX on a pandas
frame of the whole table as a notebook would build it (``SELECT *``). Prints wall time and peak RSS of
each. If ``duckdb-engine`` is installed it also tries GX's SQL datasource on the DuckDB file and
reports what happens.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb

from impact_assets.quality import QualityCheck, evaluate_checks
from impact_assets.quality._catalog import build_expectation, gx
from impact_assets.sql import compact_frame

DAY = "2026-03-02"
SUITE = [
    ("expect_table_row_count_to_be_between", {"min_value": 1}),
    ("expect_column_values_to_not_be_null", {"column": "y"}),
    ("expect_column_unique_value_count_to_be_between", {"column": "y", "max_value": 2}),
    ("expect_column_values_to_not_be_null", {"column": "yhat"}),
    ("expect_column_unique_value_count_to_be_between", {"column": "yhat", "max_value": 2}),
    ("expect_column_values_to_not_be_null", {"column": "score"}),
    ("expect_column_values_to_be_between", {"column": "score", "min_value": 0, "max_value": 1}),
    ("expect_column_values_to_not_be_null", {"column": "sex"}),
    ("expect_column_values_to_be_in_set", {"column": "sex", "value_set": ["female", "male"]}),
    ("expect_column_values_to_not_be_null", {"column": "age_band"}),
    (
        "expect_column_values_to_be_in_set",
        {"column": "age_band", "value_set": ["<25", "25-39", "40-59", "60+"]},
    ),
    ("expect_column_values_to_not_be_null", {"column": "region"}),
    (
        "expect_column_values_to_be_in_set",
        {"column": "region", "value_set": ["north", "south", "east", "west", "centre"]},
    ),
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    checks = [
        QualityCheck(f"c{i}", "scored", name, kwargs, "error", True, True)
        for i, (name, kwargs) in enumerate(SUITE)
    ]
    columns = sorted({c.kwargs["column"] for c in checks if "column" in c.kwargs})
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.duckdb")
        with duckdb.connect(path) as conn:
            conn.execute("SELECT setseed(0.42)")
            conn.execute(
                f"""CREATE TABLE scored AS SELECT range AS id, DATE '{DAY}' AS day,
                    CASE WHEN random() < 0.31 THEN 'female' ELSE 'male' END AS sex,
                    ['<25', '25-39', '40-59', '60+'][1 + CAST(floor(random() * 4) AS INTEGER)] AS age_band,
                    ['north', 'south', 'east', 'west', 'centre'][1 + CAST(floor(random() * 5) AS INTEGER)] AS region,
                    CAST(random() < 0.7 AS INTEGER) AS y, CAST(random() < 0.75 AS INTEGER) AS yhat, random() AS score,
                    random() * 10000 AS amount, 'applicant note ' || range AS note
                    FROM range({args.rows})"""
            )
            gx()  # import outside the timings
            start = time.perf_counter()
            frame = compact_frame(
                conn, f"SELECT {', '.join(columns)} FROM scored WHERE day = CAST(? AS DATE)", [DAY]
            )
            loaded = time.perf_counter() - start
            results = evaluate_checks(frame, checks)
            ours = time.perf_counter() - start
            ours_rss = peak_rss_mb()
            assert all(r.success for r in results)
            del frame
            print(f"rows: {args.rows:,}; expectations: {len(checks)}")
            print(
                f"ours (partition's checked columns, text of few values as categoricals, GX on pandas): {ours:.2f} s (load {loaded:.2f} s); peak RSS {ours_rss:.0f} MB"
            )
            start = time.perf_counter()
            whole = conn.execute("SELECT * FROM scored").df()
            reference_results = evaluate_checks(whole, checks)
            reference = time.perf_counter() - start
            assert [r.success for r in reference_results] == [r.success for r in results]
            print(
                f"GX on a pandas frame of the whole table: {reference:.2f} s; peak RSS {peak_rss_mb():.0f} MB (process)"
            )
        try:
            import duckdb_engine  # noqa: F401
        except ImportError:
            print("GX SQL datasource on DuckDB: not tried (duckdb-engine is not installed)")
            return
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx().get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        batch = (
            context.data_sources.add_sql("db", connection_string=f"duckdb:///{path}")
            .add_table_asset("scored", table_name="scored")
            .add_batch_definition_whole_table("all")
            .get_batch()
        )
        outcome = batch.validate(build_expectation(*SUITE[1]))
        errors = {
            str(v.get("exception_message", ""))
            for v in (outcome.exception_info or {}).values()
            if isinstance(v, dict)
        }
        print(
            f"GX SQL datasource on DuckDB: success={outcome.success}; errors: {sorted(errors)[:3]}"
        )


if __name__ == "__main__":
    main()
