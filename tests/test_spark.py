"""The Spark engine (PySpark, local[2]) against DuckDB: the same assessment gives the same results."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impact_assets import ProjectPaths, build_definitions, discover_assessments
from impact_assets.analytics import DriftColumn, column_drift, compute_kpis
from impact_assets.engine import SparkEngine, engine_for, to_spark
from impact_assets.errors import SpecError, SqlModelError
from impact_assets.fairness import group_cells, score_auc
from impact_assets.lineage import LineageCatalog, deliver_pending
from impact_assets.spec import AssessmentSpec, SparkEngineSpec
from impact_assets.sql import SqlModel, discover_models, materialize_partition

from .conftest import (
    DAYS,
    DEMO_SPEC,
    VENDOR_SPEC,
    alone,
    assess,
    same_day_outcomes,
    spec_variant,
)
from .test_lineage import _facets, _validator

pytestmark = pytest.mark.spark


@pytest.fixture(autouse=True)
def _java() -> None:
    """Spark needs a Java runtime: missing, the tests fail under CI and are skipped elsewhere."""
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Spark needs Java 17 (Debian package openjdk-17-jre-headless)")
        pytest.skip("Spark needs Java 17 (Debian package openjdk-17-jre-headless)")


# The tests' driver lives for a few minutes and runs small queries: the JVM's quick compiler alone
# (no C2) and a single-threaded collector cost it less CPU than full JIT warm-up on two cores.
JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
SPARK = {
    "kind": "spark",
    "spark": {
        "master": "local[2]",
        "conf": {"spark.sql.shuffle.partitions": 4, "spark.driver.extraJavaOptions": JVM},
    },
}
RESULTS = {  # table: columns that identify a row (beside partition_key)
    "group_metrics": ["feature_set", "group_key", "metric"],
    "disparities": ["feature_set", "metric", "method", "relative_to"],
    "drift": ["column_name", "statistic"],
    "kpis": ["kpi", "feature_set", "group_key"],
    "scenarios": ["scenario", "variant", "metric", "feature_set", "group_key"],
    "causal_estimates": ["name"],
    "quality_results": ["table_name", "check_name"],
}
# what differs by construction: where each engine's run wrote, and the content hash of each engine
DIFFERENT = {"run_id", "computed_at", "evaluated_at", "data_version", "reference"}


def _results(database: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as conn:
        frames = {table: conn.execute(f"SELECT * FROM impact.{table}").df() for table in RESULTS}
        frames["register_entries"] = conn.execute(
            "SELECT s.partition_key, e.entry_id, e.value, e.ci_low, e.ci_high, e.n, e.status, e.reason "
            "FROM impact.register_entries e JOIN impact.register_snapshots s USING (snapshot_id)"
        ).df()
    return frames


def _same(duck: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> None:
    """Equal rows, numbers to 1e-9 (relative)."""
    keys = ["partition_key", *keys]
    assert len(duck) == len(spark) > 0
    columns = [c for c in duck.columns if c not in DIFFERENT]
    duck = duck[columns].sort_values(keys, ignore_index=True)
    spark = spark[columns].sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(duck, spark, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_the_demo_on_spark_gives_duckdbs_results(same_day_state: ProjectPaths, tmp_path: Path):
    """The demo's first day assessed once on DuckDB and once on Spark, from the same state.

    (Writing a second day, replacing one, a rebuild and a failed write are compared below on a small
    model, where they cost less.)

    One test rather than several on a module fixture. The suite runs with ``--dist loadfile``, so
    this module's tests share one worker and one Spark session (``loadgroup`` does not group tests
    under pytest 9 with pytest-xdist 3.8).
    """
    root = tmp_path
    runs = []
    for name, engine in (("duckdb", None), ("spark", SPARK)):
        state = root / name
        shutil.copytree(same_day_state.state_dir, state)
        data = same_day_outcomes(yaml.safe_load(DEMO_SPEC.read_text()))
        if engine:
            data["engine"] = engine
        paths = alone(data, state)
        with dg.instance_for_test() as instance:
            assess(paths, instance, DAYS[:1])
            catalog = LineageCatalog(
                discover_assessments(paths), build_definitions(paths).resolve_asset_graph()
            )
            report = deliver_pending(instance, catalog, paths.state_dir)
            assert report.error is None and report.pending_events == 0
        runs.append(paths)
    duck, spark = (_results(p.database) for p in runs)
    for table, keys in RESULTS.items():
        _same(duck[table], spark[table], keys)
    _same(duck["register_entries"], spark["register_entries"], ["entry_id"])
    statuses = set(spark["register_entries"]["status"])  # entries that pass and ones that do not
    assert "pass" in statuses and statuses - {"pass"}, statuses
    _spark_tables_are_parquet_days_in_the_warehouse(*runs)
    _lineage_names_spark_tables_by_their_location(runs[1])


def _spark_tables_are_parquet_days_in_the_warehouse(duck: ProjectPaths, spark: ProjectPaths):
    warehouse = spark.state_dir / "spark-warehouse" / "credit_scoring"
    assert sorted(p.name for p in warehouse.iterdir()) == [
        "predictions",
        "scored_applications",
        "stg_applications",
    ]
    days = sorted(p.name for p in (warehouse / "predictions").iterdir())
    assert days == [str(DAYS[0])]
    # the DuckDB file holds the results only: no data table was built in it
    with duckdb.connect(str(spark.database), read_only=True) as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT table_schema FROM information_schema.tables"
            ).fetchall()
        }
    assert "credit_scoring" not in schemas
    scores = pd.read_parquet(warehouse / "predictions" / str(DAYS[0]))
    with duckdb.connect(str(duck.database), read_only=True) as conn:
        reference = conn.execute(
            "SELECT application_id, score FROM credit_scoring.predictions WHERE application_date = ?",
            [DAYS[0]],
        ).df()
    joined = reference.merge(scores, on="application_id", suffixes=("_duckdb", "_spark"))
    assert len(joined) == len(reference) == len(scores)
    np.testing.assert_allclose(joined["score_spark"], joined["score_duckdb"], rtol=1e-12)


def _lineage_names_spark_tables_by_their_location(spark: ProjectPaths):
    events = [
        json.loads(line)
        for line in (spark.state_dir / "lineage" / "events.jsonl").read_text().splitlines()
    ]
    validate = _validator()
    for event in events:
        validate(event, "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent")
        for _, facet in _facets(event):
            validate(facet, facet["_schemaURL"])
    stg = next(
        e
        for e in events
        if e["job"]["name"] == "credit_scoring.staging.stg_applications"
        and e["eventType"] == "COMPLETE"
    )
    (table,) = stg["outputs"]
    location = (
        spark.state_dir / "spark-warehouse" / "credit_scoring" / "stg_applications"
    ).resolve()
    assert (table["namespace"], table["name"]) == ("file", location.as_posix())
    assert table["facets"]["storage"]["fileFormat"] == "parquet"
    assert table["facets"]["symlinks"]["identifiers"] == [
        {"namespace": "file", "name": "credit_scoring.stg_applications", "type": "TABLE"}
    ]
    fields = table["facets"]["columnLineage"]["fields"]
    assert [f["field"] for f in fields["sex"]["inputFields"]] == ["personal_status_and_sex"]
    results = next(
        e
        for e in events
        if e["job"]["name"] == "credit_scoring.group_metrics" and e["eventType"] == "COMPLETE"
    )
    assert {d["namespace"].split(":")[0] for d in results["inputs"]} == {"file"}
    assert results["outputs"][0]["namespace"].startswith("duckdb://")


def test_a_model_with_no_spark_form_fails_at_load(tmp_path: Path):
    sql = tmp_path / "sql"
    shutil.copytree(Path(__file__).resolve().parents[1] / "dbt_like_sql", sql)
    model = sql / "marts" / "scored_applications.sql"
    model.write_text(model.read_text().replace("a.application_id,", "a.* EXCLUDE (age),", 1))
    data = same_day_outcomes(yaml.safe_load(DEMO_SPEC.read_text()))
    data["engine"] = SPARK
    paths = alone(data, tmp_path / "state")
    paths = ProjectPaths(paths.project_dir, paths.assessments_dir, sql, paths.state_dir)
    with pytest.raises(SqlModelError) as raised:
        discover_assessments(paths)
    assert raised.value.context["model"] == str(model)
    assert "SELECT * REPLACE/EXCLUDE/RENAME" in raised.value.message
    # the same model loads on DuckDB, where it runs
    data.pop("engine")
    (paths.assessments_dir / DEMO_SPEC.name).write_text(yaml.safe_dump(data))
    discover_assessments(paths)


def test_a_kpi_with_no_spark_form_fails_at_load_with_its_line(tmp_path: Path):
    def edit(data: dict) -> None:
        same_day_outcomes(data)
        data["engine"] = SPARK
        data["analytics"]["kpis"][0]["sql"] = "list_reduce(list(score), (a, b) -> a + b)"

    path = spec_variant(tmp_path, edit)
    with pytest.raises(SpecError) as raised:
        discover_assessments(alone(path, tmp_path / "state"))
    context = raised.value.context
    assert context["field"] == "analytics.kpis.0.sql" and context["line"] > 1
    assert "list_reduce() is not a Spark SQL function" in raised.value.message


# -- the aggregate SQL on random data -----------------------------------------------------------

SPEC = yaml.safe_load(VENDOR_SPEC)
SPEC["analytics"] = {
    "kpis": [{"name": "mean_score", "sql": "avg(score)"}],
    "cost_benefit": {"tp": 100, "fp": -250.5, "tn": 0, "fn": "-0.1 * score"},
}
SPEC["bindings"]["sensitive_features"] = [
    {"name": "region", "values": ["north", "south", "o'ver; ×"]},
    {"name": "band", "values": ["a", "b"]},
]
SPEC["bindings"]["intersections"] = [["region", "band"]]


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Iterator[tuple[duckdb.DuckDBPyConnection, SparkEngine, Path]]:
    folder = tmp_path_factory.mktemp("random")
    spark = engine_for(
        SparkEngineSpec(
            master="local[2]",
            warehouse=str(folder / "warehouse"),
            conf={"spark.sql.shuffle.partitions": 2, "spark.driver.extraJavaOptions": JVM},
        ),
        "random",
        Path,
    )
    conn = duckdb.connect()
    conn.execute('CREATE SCHEMA "random"')
    yield conn, spark, folder
    conn.close()


rows = st.fixed_dictionaries(
    {
        "region": st.sampled_from(["north", "south", "o'ver; ×", None, "elsewhere"]),
        "band": st.sampled_from(["a", "b"]),
        "outcome": st.integers(0, 1),
        "decision": st.integers(0, 1),
        # ties are common: a score drawn from ten values half of the time
        "score": st.one_of(
            st.sampled_from([i / 10 for i in range(11)]),
            st.floats(0, 1, allow_nan=False),
        ),
        "x": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-3, 3)),
    }
)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(rows, min_size=1, max_size=80), st.lists(rows, min_size=1, max_size=40))
def test_aggregates_on_spark_equal_duckdb_on_random_rows(engines, current, reference):
    conn, spark, folder = engines
    spec = AssessmentSpec.model_validate(SPEC)
    for name, data in (("vendor_decisions", current), ("reference", reference)):
        frame = pd.DataFrame(data).assign(
            id=lambda f: range(len(f)),
            day=dt.date(2026, 3, 2),
            x=lambda f: f["x"].astype("float64"),
        )
        path = folder / f"{name}.parquet"
        frame.to_parquet(path)
        conn.execute(
            f'CREATE OR REPLACE VIEW "random"."{name}" AS SELECT * FROM read_parquet(\'{path}\')'
        )
        spark.expose_source(name, str(path), "parquet")
    relation = '"random"."vendor_decisions"'
    b, day = spec.bindings, "2026-03-02"
    engines = (conn, spark)
    cells = [group_cells(e, relation, b, partition_key=day).frame for e in engines]
    pd.testing.assert_frame_equal(cells[0], cells[1], check_dtype=False, rtol=1e-9)
    aucs = [score_auc(e, relation, b, b.feature_sets, partition_key=day) for e in engines]
    pd.testing.assert_frame_equal(aucs[0], aucs[1], check_dtype=False, rtol=1e-9)
    kpis = [compute_kpis(e, relation, spec, day) for e in engines]
    pd.testing.assert_frame_equal(kpis[0], kpis[1], check_dtype=False, rtol=1e-9, atol=1e-9)
    for column in (DriftColumn("x", "feature", True), DriftColumn("region", "group", False)):
        drift = [
            pd.DataFrame(column_drift(e, relation, '"random"."reference"', column, bins=4))
            for e in engines
        ]
        pd.testing.assert_frame_equal(drift[0], drift[1], check_dtype=False, rtol=1e-9, atol=1e-12)


def test_duckdb_forms_spark_lacks_are_rewritten_or_refused():
    assert to_spark("SELECT quantile_cont(x, [0.25, 0.5]) FROM t") == (
        "SELECT PERCENTILE(x, ARRAY(0.25, 0.5)) FROM t"
    )
    assert to_spark("SELECT hash(a) FROM t") == "SELECT XXHASH64(a) FROM t"
    # a lookup by position: Spark's array_position gives 0 for a missing value, not NULL
    assert to_spark("SELECT [0.5, 2][list_position(['a', 'b'], c)] FROM t") == (
        "SELECT CASE c WHEN 'a' THEN CAST(0.5 AS DOUBLE) WHEN 'b' THEN 2 END FROM t"
    )
    for sql, reason in [
        ("SELECT * REPLACE (1 AS a) FROM t", "REPLACE/EXCLUDE/RENAME"),
        ("SELECT array_agg(a ORDER BY b) FROM t", "ORDER BY inside the aggregate"),
        ("SELECT a FROM t ASOF JOIN u USING (a)", "ASOF JOIN"),
        ("SELECT histogram(a) FROM t", r"histogram\(\) is not a Spark SQL function"),
    ]:
        with pytest.raises(ValueError, match=reason):
            to_spark(sql)


def test_a_model_day_on_spark_is_replaced_rebuilt_or_kept_as_on_duckdb(engines):
    """Writing a day, its columns changing (the table rebuilt from the whole query), and a failing
    query (the day written before stays whole) behave on Spark as on DuckDB."""
    conn, spark, folder = engines
    rows = pd.DataFrame(
        {
            "id": range(6),
            "day": [dt.date(2026, 3, 2)] * 4 + [dt.date(2026, 3, 3)] * 2,
            "code": ["1", "2", "3", "4", "5", "x"],
        }
    )
    rows.to_parquet(folder / "days.parquet")
    conn.execute(
        f'CREATE OR REPLACE VIEW "random"."days" AS SELECT * FROM read_parquet(\'{folder / "days.parquet"}\')'
    )
    spark.expose_source("days", str(folder / "days.parquet"), "parquet")

    def model(sql: str) -> SqlModel:
        path = folder / "daily.sql"
        path.write_text(sql)
        (found,) = discover_models(folder, ["daily.sql"])
        return found

    def both(sql: str, day: str) -> list:
        conn.execute('SET search_path = "random"')
        return [
            materialize_partition(
                conn, model(sql), schema="random", partition_column="day", partition_key=day
            ),
            spark.materialize(model(sql), partition_column="day", partition_key=day),
        ]

    first = both("SELECT id, day FROM days", "2026-03-02")
    changed = both("SELECT id, day, code FROM days", "2026-03-02")
    for duck, on_spark in (first, changed):
        assert (duck.partition_rows, duck.total_rows, duck.rebuilt) == (
            on_spark.partition_rows,
            on_spark.total_rows,
            on_spark.rebuilt,
        )
    assert changed[1].rebuilt and changed[1].total_rows == 6  # every day, from the whole query
    # under ANSI casts, the 3rd of March fails on Spark as on DuckDB; the 2nd stays as written
    failing = "SELECT id, day, CAST(code AS INTEGER) AS code FROM days"
    for engine in ("duckdb", "spark"):
        with pytest.raises(SqlModelError):
            if engine == "duckdb":
                materialize_partition(
                    conn,
                    model(failing),
                    schema="random",
                    partition_column="day",
                    partition_key="2026-03-03",
                )
            else:
                spark.materialize(
                    model(failing), partition_column="day", partition_key="2026-03-03"
                )
    kept = spark.execute('SELECT count(*) FROM "random"."daily"').fetchall()[0][0]
    assert kept == 6 == conn.execute('SELECT count(*) FROM "random"."daily"').fetchall()[0][0]
    written = sorted(p.name for p in (folder / "warehouse" / "random" / "daily").iterdir())
    assert written == ["2026-03-02", "2026-03-03"]  # no half-written folder left behind
