"""dbt_like_sql: dependencies, column lineage and partition runs, from fixture cases run on DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from impact_assets import SqlModelError
from impact_assets.sql import SqlProject, discover_models, ident, materialize_partition

CASES = sorted((Path(__file__).parent / "sql_cases").glob("*.yaml"))


def _load_case(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _model(tmp_path: Path, name: str, sql: str, folder: str = "marts"):
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / f"{name}.sql").write_text(sql)
    return discover_models(tmp_path, [f"{folder}/{name}.sql"])[0]


@pytest.mark.parametrize("case_file", CASES, ids=[_load_case(p)["title"] for p in CASES])
def test_sql_case(case_file: Path, tmp_path: Path):
    case = _load_case(case_file)
    model = _model(tmp_path, "model", case["query"])
    assert sorted(model.reads) == sorted(case["expected_reads"])

    project = SqlProject(
        [model], external={t: {c: "UNKNOWN" for c in rows[0]} for t, rows in case["inputs"].items()}
    )
    edges = {
        col: sorted(f"{d.table}.{d.column}" for d in deps)
        for col, deps in project.column_lineage["model"].items()
    }
    assert edges == {col: sorted(v) for col, v in case["expected_lineage"].items()}

    with duckdb.connect(str(tmp_path / "case.duckdb")) as conn:
        conn.execute("CREATE SCHEMA s")
        conn.execute("SET search_path = 's'")
        for table, rows in case["inputs"].items():
            conn.register("_rows", pd.DataFrame(rows))
            conn.execute(f"CREATE TABLE s.{ident(table)} AS SELECT * FROM _rows")
            conn.unregister("_rows")
        day_column = next(c for c in project.columns["model"] if c == "day")
        written = materialize_partition(
            conn, model, schema="s", partition_column=day_column, partition_key=case["partition"]
        )
        got = conn.execute("SELECT * FROM s.model ORDER BY ALL").fetchall()
    got = [tuple(v.isoformat() if hasattr(v, "isoformat") else v for v in row) for row in got]
    expected = [tuple(row) for row in case["expected_rows"]]
    assert got == expected
    assert written.partition_rows == len(expected)


def test_partition_rerun_replaces_only_that_day(tmp_path: Path):
    model = _model(tmp_path, "daily", "SELECT day, v FROM src")
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA s; SET search_path = 's'")
        conn.execute(
            "CREATE TABLE s.src AS SELECT * FROM (VALUES (DATE '2026-03-02', 1), (DATE '2026-03-03', 2)) t(day, v)"
        )
        for day in ("2026-03-02", "2026-03-03", "2026-03-02"):
            materialize_partition(
                conn, model, schema="s", partition_column="day", partition_key=day
            )
        conn.execute("UPDATE s.src SET v = 10 WHERE day = DATE '2026-03-02'")
        materialize_partition(
            conn, model, schema="s", partition_column="day", partition_key="2026-03-02"
        )
        assert conn.execute("SELECT day::VARCHAR, v FROM s.daily ORDER BY day").fetchall() == [
            ("2026-03-02", 10),
            ("2026-03-03", 2),
        ]


def test_column_change_rebuilds_the_table(tmp_path: Path):
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA s; SET search_path = 's'")
        conn.execute(
            "CREATE TABLE s.src AS SELECT * FROM (VALUES (DATE '2026-03-02', 1), (DATE '2026-03-03', 2)) t(day, v)"
        )
        first = _model(tmp_path, "m", "SELECT day, v FROM src")
        materialize_partition(
            conn, first, schema="s", partition_column="day", partition_key="2026-03-02"
        )
        second = _model(tmp_path, "m", "SELECT day, v, v * 2 AS w FROM src")
        written = materialize_partition(
            conn, second, schema="s", partition_column="day", partition_key="2026-03-02"
        )
        assert written.rebuilt
        assert conn.execute("SELECT count(*), sum(w) FROM s.m").fetchall() == [(2, 6)]


def test_syntax_error_names_file_and_line(tmp_path: Path):
    (tmp_path / "bad.sql").write_text("SELECT a,\n  b\nFROM t\nWHERE (a = \n")
    with pytest.raises(SqlModelError, match="SQL syntax error") as info:
        discover_models(tmp_path, ["*.sql"])
    assert info.value.context["model"].endswith("bad.sql")
    assert info.value.context["line"] == 4


def test_not_a_select_is_rejected(tmp_path: Path):
    (tmp_path / "drop.sql").write_text("DROP TABLE impact.runs")
    with pytest.raises(SqlModelError, match="must be a SELECT query; found DROP"):
        discover_models(tmp_path, ["*.sql"])


def test_two_statements_are_rejected(tmp_path: Path):
    (tmp_path / "two.sql").write_text("SELECT 1; SELECT 2")
    with pytest.raises(SqlModelError, match="exactly one statement; found 2"):
        discover_models(tmp_path, ["*.sql"])


def test_cycle_is_reported(tmp_path: Path):
    a = _model(tmp_path, "a", "SELECT * FROM b")
    b = _model(tmp_path, "b", "SELECT * FROM a")
    with pytest.raises(SqlModelError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        SqlProject([a, b], external={})


def test_duckdb_error_names_the_line_of_the_model_file(tmp_path: Path):
    model = _model(tmp_path, "m", "SELECT\n    day,\n    nope\nFROM src\n")
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA s; SET search_path = 's'")
        conn.execute("CREATE TABLE s.src AS SELECT DATE '2026-03-02' AS day")
        with pytest.raises(SqlModelError, match='Referenced column "nope" not found') as info:
            materialize_partition(
                conn, model, schema="s", partition_column="day", partition_key="2026-03-02"
            )
        assert info.value.context["line"] == 3
        assert info.value.context["model"].endswith("m.sql")
        assert conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'm'"
        ).fetchall() == [(0,)]


def test_missing_partition_column_is_reported(tmp_path: Path):
    model = _model(tmp_path, "m", "SELECT v FROM src")
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA s; SET search_path = 's'")
        conn.execute("CREATE TABLE s.src AS SELECT 1 AS v")
        with pytest.raises(
            (SqlModelError,), match="the model's output has no partition column 'day'"
        ):
            materialize_partition(
                conn, model, schema="s", partition_column="day", partition_key="2026-03-02"
            )


def test_hostile_identifiers_are_quoted(tmp_path: Path):
    model = _model(tmp_path, "m", 'SELECT "dä""y; DROP TABLE x --" AS day FROM src')
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA s; SET search_path = 's'")
        conn.execute('CREATE TABLE s.src AS SELECT DATE \'2026-03-02\' AS "dä""y; DROP TABLE x --"')
        written = materialize_partition(
            conn, model, schema="s", partition_column="day", partition_key="2026-03-02"
        )
    assert written.partition_rows == 1
