"""Re-assessment when a quarter's outcomes land, against re-running the quarter's nights in full.

Usage:  .venv/bin/python bench/outcomes.py [--days 90] [--rows 1000000] [--memory-limit 1GB]

The nightly benchmark's cases (``bench/nightly.py``: 12 model features, 3 sensitive features and an
intersection, 1,000 bootstrap resamples, KPIs and cost-benefit, drift, scenarios, sensitivity), with
outcomes that arrive late: an ``outcomes`` section (their own source, maturity 90 days, daily
cohorts). In fresh processes, so that each peak RSS is that step's own:

1. prepare (untimed): ``--days`` daily batches of ``--rows`` decisions whose outcome is still empty,
   the outcomes of every decision in one file, a trained model version;
2. reference: the assessment job on every day, in full, one run after another (what re-running the
   quarter's nights would cost); this also leaves the state a deployment has after its nights;
3. a quarter's outcomes land (1 % of them corrected): the outcomes sensor's plan finds the cohorts
   due (with the runs' memory limit, as the sensor has the runs' resource);
4. the outcomes job re-assesses each cohort (its outcome metrics, the KPIs that read outcomes, a new
   register snapshot and the report), one run after another.

Prints the wall time and peak RSS of 2, 3 and 4, per day and in all, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nightly import SCORED_SQL, SPEC, STAGING_SQL, TRAINING_ROWS, _peak_gb, _rows_sql

FIRST_DAY = "2026-01-01"
OUTCOMES = {
    "table": "raw_outcomes",
    "id_column": "case_id",
    "label": "outcome",
    "observed_at": "observed_on",
    "maturity_days": 90,
    "cohort": "day",
}


def _days(count: int) -> list[str]:
    import datetime as dt

    first = dt.date.fromisoformat(FIRST_DAY)
    return [(first + dt.timedelta(days=k)).isoformat() for k in range(count)]


def _batch_sql(rows: int, k: int, day: str) -> str:
    """Day ``k``'s decisions, ids unique across days."""
    return f"SELECT * REPLACE (case_id + {k * rows} AS case_id) FROM ({_rows_sql(rows, k, day)})"


def prepare(root: Path, days: int, rows: int) -> None:
    import yaml

    from impact_assets import ProjectPaths, load_assessment
    from impact_assets.pipeline import train_model

    spec = json.loads(json.dumps(SPEC))
    spec["id"] = "quarter"
    spec["partitions"] = {"start_date": FIRST_DAY}
    spec["sources"]["raw_outcomes"] = {
        "path": "{state_dir}/landing/outcomes/*.parquet",
        "format": "parquet",
        "partition_column": "observed_on",
    }
    spec["outcomes"] = OUTCOMES
    (root / "assessments").mkdir(parents=True)
    (root / "dbt_like_sql" / "nightly").mkdir(parents=True)
    (root / "assessments" / "quarter.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "dbt_like_sql" / "nightly" / "stg_cases.sql").write_text(STAGING_SQL)
    (root / "dbt_like_sql" / "nightly" / "scored_cases.sql").write_text(SCORED_SQL)
    paths = ProjectPaths.for_project(root)
    landing = paths.state_dir / "landing"
    (landing / "cases").mkdir(parents=True)
    (landing / "outcomes").mkdir(parents=True)
    with duckdb.connect() as conn:
        for k, day in enumerate(_days(days)):
            batch = _batch_sql(rows, k, day)
            conn.execute(
                f"COPY (SELECT * REPLACE (CAST(NULL AS INTEGER) AS outcome) FROM ({batch})) "
                f"TO '{landing / 'cases' / (day + '.parquet')}'"
            )
            # the outcomes, observed 90 days on; staged beside the landing folder until they land
            conn.execute(
                f"COPY (SELECT case_id, outcome, case_date + INTERVAL 90 DAY AS observed_on FROM ({batch})) "
                f"TO '{root / ('outcomes-' + day + '.parquet')}'"
            )
        training = conn.execute(_rows_sql(TRAINING_ROWS, 7, "2025-12-01")).df()
    train_model(load_assessment(root / "assessments" / "quarter.yaml", paths), training)


def _run_config(database: str, memory_limit: str) -> dict:
    return {
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        "resources": {
            "impact_duckdb": {
                "config": {
                    "database": database,
                    "connection_config": {"memory_limit": memory_limit},
                }
            }
        },
    }


def nights(root: Path, days: int, memory_limit: str) -> dict:
    """The assessment job on every day, in full."""
    import dagster as dg

    from impact_assets import ProjectPaths, assessment_job_name, build_definitions

    paths = ProjectPaths.for_project(root)
    job = build_definitions(paths).resolve_job_def(assessment_job_name("quarter"))
    config = _run_config(str(paths.database), memory_limit)
    began = time.perf_counter()
    (root / "dagster").mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(str(root / "dagster")) as instance:
        for day in _days(days):
            assert job.execute_in_process(
                partition_key=day, instance=instance, run_config=config
            ).success
    return {"total": time.perf_counter() - began, "peak_gb": _peak_gb()}


def land(root: Path) -> None:
    """The quarter's outcomes land, 1 % of them corrected on the way."""
    landing = root / ".impact" / "landing" / "outcomes"
    with duckdb.connect() as conn:
        for staged in sorted(root.glob("outcomes-*.parquet")):
            conn.execute(
                f"COPY (SELECT * REPLACE (CASE WHEN hash(case_id) % 100 = 0 THEN 1 - outcome ELSE outcome END AS outcome) "
                f"FROM '{staged}') TO '{landing / staged.name}'"
            )


def plan(root: Path, memory_limit: str) -> dict:
    """What the outcomes sensor finds due: the cohorts whose outcomes landed or changed."""
    import datetime as dt

    from impact_assets import ProjectPaths, discover_assessments, pipeline
    from impact_assets.storage import connect

    paths = ProjectPaths.for_project(root)
    (assessment,) = discover_assessments(paths)
    began = time.perf_counter()
    # the sensor's connection has the resource's settings, as the runs' have
    with connect(paths.database, config={"memory_limit": memory_limit}) as conn:
        pipeline.prepare(conn, assessment)
        due = pipeline.outcome_reassessments(
            conn, assessment, last_partition="2099-12-31", today=dt.date(2099, 1, 1)
        )
    return {"total": time.perf_counter() - began, "due": due, "peak_gb": _peak_gb()}


def reassess(root: Path, memory_limit: str, due: list) -> dict:
    """The outcomes job on each cohort the plan names, one run after another."""
    import dagster as dg

    from impact_assets import ProjectPaths, build_definitions
    from impact_assets.orchestration import outcomes_job_name

    paths = ProjectPaths.for_project(root)
    job = build_definitions(paths).resolve_job_def(outcomes_job_name("quarter"))
    config = _run_config(str(paths.database), memory_limit)
    began = time.perf_counter()
    (root / "dagster").mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(str(root / "dagster")) as instance:
        for cohort, partition, _ in due:
            tags = {
                "impact_assets/snapshot_reason": "outcomes arrived",
                "impact_assets/cohort": cohort,
            }
            assert job.execute_in_process(
                partition_key=partition, instance=instance, run_config=config, tags=tags
            ).success
    return {"total": time.perf_counter() - began, "peak_gb": _peak_gb()}


def _child(what: str, root: Path, arg: str = "") -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", what, str(root), arg],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, root, arg = args.child
        result: dict = {}
        if what == "prepare":
            days, rows = (int(x) for x in arg.split(","))
            prepare(Path(root), days, rows)
        elif what == "nights":
            days, limit = arg.split(",")
            result = nights(Path(root), int(days), limit)
        elif what == "land":
            land(Path(root))
        elif what == "plan":
            result = plan(Path(root), arg)
        else:
            limit, due = arg.split(",", 1)
            result = reassess(Path(root), limit, json.loads(due))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "quarter"
        began = time.perf_counter()
        _child("prepare", root, f"{args.days},{args.rows}")
        print(
            f"{args.days} days of {args.rows:,} decisions prepared in {time.perf_counter() - began:.0f} s"
        )
        full = _child("nights", root, f"{args.days},{args.memory_limit}")
        _child("land", root)
        planned = _child("plan", root, args.memory_limit)
        ours = _child("reassess", root, f"{args.memory_limit},{json.dumps(planned['due'])}")
    assert len(planned["due"]) == args.days, planned
    per = args.days
    total = planned["total"] + ours["total"]
    print(
        f"  reference: {args.days} nights in full          {full['total']:8.1f} s  ({full['total'] / per:.2f} s a day)   peak RSS {full['peak_gb']:.2f} GB"
    )
    print(
        f"  outcomes landed: the sensor's plan            {planned['total']:8.1f} s                        peak RSS {planned['peak_gb']:.2f} GB"
    )
    print(
        f"                   {per} cohorts re-assessed       {ours['total']:8.1f} s  ({ours['total'] / per:.2f} s a cohort)   peak RSS {ours['peak_gb']:.2f} GB"
    )
    print(
        f"  ratio (plan and re-assessment / full nights): time x{total / full['total']:.2f}, "
        f"peak RSS x{max(planned['peak_gb'], ours['peak_gb']) / full['peak_gb']:.2f}"
    )


if __name__ == "__main__":
    main()
