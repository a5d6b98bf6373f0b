"""Register entries: status rules, and append-only snapshots written in one transaction."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from impact_assets import StorageError
from impact_assets.register import evaluate_entry, status_for, write_snapshot
from impact_assets.spec import RegisterEntry, Thresholds
from impact_assets.storage import MIGRATIONS, migrate

from .conftest import parity_entry


def _entry(**measure) -> RegisterEntry:
    return parity_entry(measure=measure)


@pytest.mark.parametrize(
    ("value", "direction", "warn", "breach", "status"),
    [
        (0.95, "higher_is_better", 0.9, 0.8, "pass"),
        (0.9, "higher_is_better", 0.9, 0.8, "pass"),
        (0.85, "higher_is_better", 0.9, 0.8, "warn"),
        (0.8, "higher_is_better", 0.9, 0.8, "warn"),
        (0.79, "higher_is_better", 0.9, 0.8, "breach"),
        (0.05, "lower_is_better", 0.1, 0.2, "pass"),
        (0.15, "lower_is_better", 0.1, 0.2, "warn"),
        (0.21, "lower_is_better", 0.1, 0.2, "breach"),
        (0.85, "higher_is_better", None, 0.8, "pass"),
    ],
)
def test_status_rules(value, direction, warn, breach, status):
    assert status_for(value, Thresholds(direction=direction, warn=warn, breach=breach))[0] == status


def _disparities(**row) -> dict[str, pd.DataFrame]:
    base = {
        "feature_set": "sex",
        "metric": "demographic_parity",
        "method": "ratio",
        "relative_to": "between_groups",
        "value": 0.75,
        "n": 1000,
        "ci_low": None,
        "ci_high": None,
        "reason": None,
    }
    return {"disparities": pd.DataFrame([{**base, **row}]), "group_metrics": pd.DataFrame()}


def test_entry_resolves_its_row_and_breaches():
    result = evaluate_entry(_entry(), _disparities())
    assert (result.status, result.value, result.n) == ("breach", 0.75, 1000)
    assert "below the breach threshold 0.8" in result.reason


def test_missing_value_is_insufficient_data_never_pass():
    result = evaluate_entry(
        _entry(), _disparities(value=None, reason="fewer than two groups with a value")
    )
    assert result.status == "insufficient_data"
    assert result.reason == "fewer than two groups with a value"
    assert (
        evaluate_entry(_entry(relative_to="to_overall"), _disparities()).status
        == "insufficient_data"
    )


def test_suppressed_group_is_reported_as_suppressed():
    entry = RegisterEntry.model_validate(
        {
            **_entry().model_dump(),
            "measure": {
                "source": "group_metric",
                "metric": "selection_rate",
                "feature_set": "sex",
                "group": "f",
            },
        }
    )
    metrics = pd.DataFrame(
        [
            {
                "feature_set": "sex",
                "group_key": "f",
                "metric": "selection_rate",
                "value": None,
                "n": 12,
                "suppressed": True,
                "reason": "group has 12 rows, fewer than the minimum group size 30",
            }
        ]
    )
    result = evaluate_entry(entry, {"group_metrics": metrics})
    assert (result.status, result.n) == ("suppressed", 12)


def _write(conn, partition="2026-03-02", run="r1"):
    entry = _entry()
    return write_snapshot(
        conn,
        assessment_id="a",
        partition_key=partition,
        run_id=run,
        model_version="1",
        data_version="d",
        entries=(entry,),
        results=[evaluate_entry(entry, _disparities())],
    )


def test_snapshots_are_appended_with_increasing_versions(tmp_path):
    with duckdb.connect(str(tmp_path / "r.duckdb")) as conn:
        migrate(conn)
        first, second = _write(conn), _write(conn, run="r2")
        other = _write(conn, partition="2026-03-03")
        assert (first.snapshot_version, second.snapshot_version, other.snapshot_version) == (
            1,
            2,
            1,
        )
        assert conn.execute("SELECT count(*) FROM impact.register_entries").fetchall() == [(3,)]
        assert conn.execute(
            "SELECT run_id, status FROM impact.runs ORDER BY run_id, partition_key"
        ).fetchall() == [("r1", "completed"), ("r1", "completed"), ("r2", "completed")]


def test_failed_snapshot_leaves_nothing_behind(tmp_path):
    with duckdb.connect(str(tmp_path / "r.duckdb")) as conn:
        migrate(conn)
        _write(conn)
        entry = _entry()
        bad = evaluate_entry(entry, _disparities())
        bad = bad.__class__(**{**bad.__dict__, "status": "not-a-status"})
        with pytest.raises(StorageError, match="was not written"):
            write_snapshot(
                conn,
                assessment_id="a",
                partition_key="2026-03-02",
                run_id="r9",
                model_version="1",
                data_version="d",
                entries=(entry,),
                results=[bad],
            )
        assert conn.execute("SELECT count(*) FROM impact.register_snapshots").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM impact.register_entries").fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM impact.runs WHERE run_id = 'r9'").fetchall() == [
            (0,)
        ]


def test_migrations_are_idempotent(tmp_path):
    with duckdb.connect(str(tmp_path / "r.duckdb")) as conn:
        assert migrate(conn) == migrate(conn) == MIGRATIONS[-1].version
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'impact' AND table_name = 'register_entries' ORDER BY ordinal_position"
        ).fetchall()
    assert columns[:3] == [
        ("snapshot_id", "VARCHAR"),
        ("assessment_id", "VARCHAR"),
        ("entry_id", "VARCHAR"),
    ]


def test_interval_decisions():
    thresholds = Thresholds(
        direction="higher_is_better", warn=0.9, breach=0.8, decide_on="interval"
    )
    assert status_for(0.75, thresholds, (0.70, 0.79))[0] == "breach"
    assert status_for(0.75, thresholds, (0.60, 0.85))[0] == "warn"  # inconclusive breach
    assert status_for(0.85, thresholds, (0.80, 0.95))[0] == "pass"  # inconclusive warning
    assert status_for(0.85, thresholds, (0.82, 0.88))[0] == "warn"
    assert status_for(0.75, thresholds, (None, None))[0] == "insufficient_data"
    assert status_for(0.95, thresholds, (None, None))[0] == "pass"
