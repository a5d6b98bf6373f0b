"""The whole nightly assessment of one partition, in process, at 100k, 1M and 10M rows.

Usage:  .venv/bin/python bench/nightly.py [--rows 100000,1000000,10000000] [--skip-reference]
                                         [--engine duckdb|spark|both]

For each size, in a fresh process (so that peak RSS is that run's own):

1. writes a seeded partition of scored cases to Parquet with DuckDB (12 model features, 3 sensitive
   features and their intersection, the outcome) and trains a model on 50,000 other rows (untimed);
2. runs the assessment job with Dagster's ``execute_in_process``: SQL models, scoring with the
   registered model, the quality checks (Great Expectations), group metrics with 1,000 bootstrap
   resamples, disparities, KPIs and cost-benefit, drift of 15 columns, two scenarios, sensitivity,
   the register snapshot and the report; then delivers the run's OpenLineage events to a file;
3. prints the wall time of every step (from the run's event log), the total, and peak RSS. DuckDB's
   ``memory_limit`` is set to ``--memory-limit`` (1GB) through the resource's run config: its buffer
   pool is part of the process's memory and by default may take 80 % of the machine's.

Then, unless ``--skip-reference``, the same rows through the reference tools, each in its own
process: one fairlearn ``MetricFrame`` (selection rate, TPR, FPR over the three sensitive features,
no bootstrap) on the raw rows, and Great Expectations on a pandas frame of the scored table with the
same expectations as the suite. Targets (2 cores): at most 30 s and 2 GB for 10M rows.

``--engine spark`` runs the same assessment with the Spark engine on ``local[2]`` (driver memory
``--spark-memory``): the peak RSS printed is the Dagster process's own (the JVM is a separate process),
which must stay flat as rows grow, since only aggregates come back. ``both`` runs DuckDB and Spark on each
size and prints their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

DAY = "2026-03-02"
TRAINING_ROWS = 50_000
NUMERIC = ["income", "debt_ratio", "tenure_months", "age", "requested_amount", "open_accounts"]
CATEGORICAL = ["channel", "product", "employment", "housing", "purpose", "education"]
SENSITIVE = {
    "sex": ["female", "male"],
    "age_band": ["<25", "25-39", "40-59", "60+"],
    "region": ["north", "south", "east", "west", "centre"],
}

SPEC = {
    "id": "nightly",
    "title": "Nightly assessment benchmark",
    "intended_use": "Benchmark of the nightly assessment on a large synthetic partition.",
    "limitations": ["Synthetic data."],
    "owners": ["bench@example.org"],
    "stakeholders": [{"id": "applicants", "description": "People scored."}],
    "model": {
        "name": "bench_model",
        "positive_label": 1,
        "registry": {
            "features_table": "stg_cases",
            "id_column": "case_id",
            "label": "outcome",
            "decision_threshold": 0.5,
            "features": NUMERIC + CATEGORICAL,
        },
    },
    "sources": {
        "raw_cases": {
            "path": "{state_dir}/landing/cases/*.parquet",
            "format": "parquet",
            "partition_column": "case_date",
            "loaded_at_column": "loaded_at",
        }
    },
    "sql": {"paths": ["nightly/*.sql"]},
    "partitions": {"start_date": "2026-03-01"},
    "bindings": {
        "scored_table": "scored_cases",
        "id_column": "case_id",
        "partition_column": "case_date",
        "label": "outcome",
        "prediction": "decision",
        "score": "score",
        "sensitive_features": [{"name": k, "values": v} for k, v in SENSITIVE.items()],
        "intersections": [["sex", "age_band"]],
        "min_group_size": 30,
    },
    "quality": {
        "tables": {
            "stg_cases": [
                {
                    "expectation": "expect_column_values_to_be_between",
                    "kwargs": {"column": "debt_ratio", "min_value": 0, "max_value": 5},
                    "severity": "warn",
                },
            ]
        }
    },
    "fairness": {"bootstrap": {"resamples": 1000, "seed": 1}},
    "analytics": {
        "kpis": [{"name": "approval_rate", "sql": "avg(decision)"}],
        "cost_benefit": {"tp": 100, "fp": -300, "tn": 0, "fn": -50},
        "drift": {"bins": 10},
        "scenarios": [
            {"name": "threshold", "kind": "threshold_sweep", "thresholds": [0.4, 0.5, 0.6]},
            {"name": "income_down", "kind": "feature_shift", "column": "income", "multiply": 0.9},
        ],
        "sensitivity": {"feature_set": "sex", "repeats": 2},
    },
    "register": [
        {
            "id": "approval_parity_sex",
            "outcome": "Women and men are approved at comparable rates.",
            "stakeholder": "applicants",
            "impact": "harm",
            "measure": {
                "source": "disparity",
                "metric": "demographic_parity",
                "feature_set": "sex",
                "method": "ratio",
            },
            "thresholds": {"direction": "higher_is_better", "warn": 0.9, "breach": 0.8},
            "owner": "bench@example.org",
        },
        {
            "id": "score_drift",
            "outcome": "Scores are distributed as in training.",
            "stakeholder": "applicants",
            "impact": "harm",
            "measure": {"source": "drift", "column": "score", "statistic": "psi"},
            "thresholds": {"direction": "lower_is_better", "warn": 0.1, "breach": 0.25},
            "owner": "bench@example.org",
        },
    ],
}

STAGING_SQL = f"""SELECT case_id, CAST(case_date AS DATE) AS case_date, {", ".join(NUMERIC + CATEGORICAL)},
    {", ".join(SENSITIVE)}, outcome
FROM raw_cases
"""
SCORED_SQL = f"""SELECT c.case_id, c.case_date, {", ".join(f"c.{s}" for s in SENSITIVE)}, c.outcome,
    p.score, p.decision, p.model_version
FROM stg_cases AS c
JOIN predictions AS p ON p.case_id = c.case_id AND p.case_date = c.case_date
"""


def _rows_sql(rows: int, seed: int, day: str) -> str:
    """``rows`` seeded cases of ``day``; the outcome depends on income, debt ratio and tenure."""

    def draw(salt: int) -> str:
        # one 64-bit hash of a number unique to (seed, row, salt): DuckDB's two-argument hash(i, salt)
        # leaves the low bits of different salts dependent (sex and age band met in 4 of 8 pairs)
        return f"hash(i * 1000 + {seed * 10**12 + salt})"

    def pick(values: list[str], salt: int) -> str:
        return f"[{', '.join(repr(v) for v in values)}][1 + CAST({draw(salt)} % {len(values)} AS INTEGER)]"

    def uniform(salt: int) -> str:
        return f"({draw(salt)} % 1000000) / 1000000.0"

    categorical = ", ".join(
        f"{pick([f'{c}_{k}' for k in range(4 + j)], 100 + j)} AS {c}"
        for j, c in enumerate(CATEGORICAL)
    )
    sensitive = ", ".join(
        f"{pick(values, 200 + j)} AS {name}" for j, (name, values) in enumerate(SENSITIVE.items())
    )
    return f"""
        SELECT * EXCLUDE (i), CAST({uniform(9)} < 1 / (1 + exp(-(income / 20000 - 2 * debt_ratio + tenure_months / 60 - 0.5))) AS INTEGER) AS outcome
        FROM (
            SELECT i, i AS case_id, DATE '{day}' AS case_date, TIMESTAMP '{day} 23:00' AS loaded_at,
                20000 + 80000 * {uniform(1)} AS income, 2 * {uniform(2)} AS debt_ratio,
                CAST(120 * {uniform(3)} AS INTEGER) AS tenure_months, CAST(18 + 60 * {uniform(4)} AS INTEGER) AS age,
                1000 + 20000 * {uniform(5)} AS requested_amount, CAST(10 * {uniform(6)} AS INTEGER) AS open_accounts,
                {categorical}, {sensitive}
            FROM range({rows}) t(i)
        )
    """


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def prepare(root: Path, rows: int, engine: str, spark_memory: str) -> None:
    """The project under ``root``: spec, SQL, the day's Parquet batch and a trained model version."""
    import yaml

    spec = dict(SPEC)
    if engine == "spark":
        spec["engine"] = {
            "kind": "spark",
            "spark": {"master": "local[2]", "conf": {"spark.driver.memory": spark_memory}},
        }
    from impact_assets import ProjectPaths, load_assessment
    from impact_assets.pipeline import train_model

    (root / "assessments").mkdir(parents=True)
    (root / "dbt_like_sql" / "nightly").mkdir(parents=True)
    (root / "assessments" / "nightly.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "dbt_like_sql" / "nightly" / "stg_cases.sql").write_text(STAGING_SQL)
    (root / "dbt_like_sql" / "nightly" / "scored_cases.sql").write_text(SCORED_SQL)
    paths = ProjectPaths.for_project(root)
    landing = paths.state_dir / "landing" / "cases"
    landing.mkdir(parents=True)
    with duckdb.connect() as conn:
        conn.execute(f"COPY ({_rows_sql(rows, 0, DAY)}) TO '{landing / (DAY + '.parquet')}'")
        training = conn.execute(_rows_sql(TRAINING_ROWS, 7, "2026-02-01")).df()
    train_model(load_assessment(root / "assessments" / "nightly.yaml", paths), training)


def run(root: Path, memory_limit: str) -> dict:
    """Materialize the partition and deliver its lineage; timings from the run's event log."""
    import dagster as dg

    from impact_assets import (
        ProjectPaths,
        assessment_job_name,
        build_definitions,
        discover_assessments,
    )
    from impact_assets.lineage import LineageCatalog, deliver_pending

    paths = ProjectPaths.for_project(root)
    defs = build_definitions(paths)
    database = {
        "database": str(paths.database),
        "connection_config": {"memory_limit": memory_limit},
    }
    run_config = {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "resources": {"impact_duckdb": {"config": database}},
    }
    began = time.perf_counter()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(assessment_job_name("nightly")).execute_in_process(
            partition_key=DAY, instance=instance, run_config=run_config
        )
        assert result.success
        materialized = time.perf_counter()
        catalog = LineageCatalog(discover_assessments(paths), defs.resolve_asset_graph())
        report = deliver_pending(instance, catalog, paths.state_dir)
        assert report.error is None and report.delivered > 0
        ended = time.perf_counter()
        starts: dict[str, float] = {}
        steps: dict[str, float] = {}
        for event in instance.all_logs(result.run_id):
            if event.dagster_event is None or event.step_key is None:
                continue
            kind = event.dagster_event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = event.timestamp
            elif kind == dg.DagsterEventType.STEP_SUCCESS:
                steps[event.step_key.removeprefix("nightly__")] = (
                    event.timestamp - starts[event.step_key]
                )
    steps["lineage (file)"] = ended - materialized
    return {"steps": steps, "total": ended - began, "peak_gb": _peak_gb()}


def reference(root: Path, tool: str) -> dict:
    """The reference tools on the scored rows of the run."""

    from impact_assets import ProjectPaths

    database = ProjectPaths.for_project(root).database
    columns = ["outcome", "decision", *SENSITIVE] + (
        ["score", "debt_ratio"] if tool == "gx" else []
    )
    began = time.perf_counter()
    with duckdb.connect(str(database), read_only=True) as conn:
        frame = conn.execute(
            f"SELECT {', '.join(columns)} FROM nightly.scored_cases "
            "JOIN nightly.stg_cases USING (case_id, case_date, outcome, sex, age_band, region)"
        ).df()
    loaded = time.perf_counter()
    if tool == "fairlearn":
        from fairlearn.metrics import (
            MetricFrame,
            false_positive_rate,
            selection_rate,
            true_positive_rate,
        )

        MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=frame["outcome"],
            y_pred=frame["decision"],
            sensitive_features=frame[list(SENSITIVE)],
        )
    else:
        from impact_assets.quality._catalog import gx

        module = gx()
        context = module.get_context(mode="ephemeral")
        batch = (
            context.data_sources.add_pandas("bench")
            .add_dataframe_asset("cases")
            .add_batch_definition_whole_dataframe("all")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        e = module.expectations
        suite = [e.ExpectTableRowCountToBeBetween(min_value=1)]
        for column in ["outcome", "decision", "score", *SENSITIVE]:
            suite.append(e.ExpectColumnValuesToNotBeNull(column=column))
        suite += [
            e.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1),
            e.ExpectColumnValuesToBeBetween(column="debt_ratio", min_value=0, max_value=5),
            e.ExpectColumnDistinctValuesToBeInSet(column="outcome", value_set=[0, 1]),
        ]
        suite += [
            e.ExpectColumnValuesToBeInSet(column=name, value_set=values)
            for name, values in SENSITIVE.items()
        ]
        for expectation in suite:
            batch.validate(expectation)
    ended = time.perf_counter()
    return {"total": ended - loaded, "load": loaded - began, "peak_gb": _peak_gb()}


def _child(what: str, root: Path, arg: str = "") -> dict:
    """Run ``what`` (prepare, run, fairlearn, gx) in a fresh process; its last output line is JSON."""
    command = [sys.executable, __file__, "--child", what, str(root), arg]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="100000,1000000,10000000")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--memory-limit",
        default="1GB",
        help="DuckDB's memory_limit for the results database (its buffer is part of the process's RSS).",
    )
    parser.add_argument("--engine", choices=["duckdb", "spark", "both"], default="duckdb")
    parser.add_argument("--spark-memory", default="4g", help="spark.driver.memory of local[2].")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, root, arg = args.child
        if what == "prepare":
            rows, engine = arg.split(",")
            prepare(Path(root), int(rows), engine, args.spark_memory)
            result = {}
        elif what == "run":
            result = run(Path(root), arg)
        else:
            result = reference(Path(root), what)
        print(json.dumps(result))
        return
    sizes = [int(r) for r in args.rows.split(",")]
    engines = ["duckdb", "spark"] if args.engine == "both" else [args.engine]
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            for engine in engines:
                root = Path(tmp) / f"{engine}-{rows}"
                began = time.perf_counter()
                _child("prepare", root, f"{rows},{engine}")
                print(
                    f"\n== {rows:,} rows on {engine} (data and model prepared in {time.perf_counter() - began:.1f} s)"
                )
                ours = _child("run", root, args.memory_limit)
                results[engine, rows] = ours
                for step, seconds in sorted(ours["steps"].items(), key=lambda kv: -kv[1]):
                    print(f"  {step:<42} {seconds:7.2f} s")
                print(
                    f"  {'TOTAL (job + lineage, wall)':<42} {ours['total']:7.2f} s   peak RSS {ours['peak_gb']:.2f} GB"
                    + (" (the Dagster process; the JVM apart)" if engine == "spark" else "")
                )
            if not args.skip_reference and rows == max(sizes):
                for tool in ("fairlearn", "gx"):
                    ref = _child(tool, root)
                    label = (
                        "fairlearn MetricFrame, 1 call, no bootstrap"
                        if tool == "fairlearn"
                        else "GX on a pandas frame, same expectations"
                    )
                    print(
                        f"  reference: {label:<44} {ref['total']:7.2f} s (+{ref['load']:.1f} s to load the rows)   peak RSS {ref['peak_gb']:.2f} GB"
                    )
    small = min(sizes)
    for engine in engines:
        if len(sizes) > 1:
            print(f"\nScaling on {engine} (time and rows relative to the smallest size):")
            for rows in sizes:
                ours, first = results[engine, rows], results[engine, small]
                print(
                    f"  {rows:>12,} rows  x{rows / small:>6.0f} rows  x{ours['total'] / first['total']:>6.2f} time"
                    f"  {ours['total'] / rows * 1e6:8.2f} s per 1M rows   peak RSS {ours['peak_gb']:.2f} GB"
                )
    if len(engines) == 2:
        print("\nSpark local[2] against DuckDB on the same rows:")
        for rows in sizes:
            duck, spark = results["duckdb", rows], results["spark", rows]
            print(
                f"  {rows:>12,} rows  time x{spark['total'] / duck['total']:.2f}"
                f"  Dagster-process peak RSS {spark['peak_gb']:.2f} GB vs {duck['peak_gb']:.2f} GB"
            )


if __name__ == "__main__":
    main()
