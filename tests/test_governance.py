"""The living register: changes, governance actions, release decisions, impact level, racing writers, export."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import duckdb
import pytest

from impact_assets.register import (
    EntryResult,
    export_audit,
    impact_level,
    release_decision,
    write_snapshot,
)
from impact_assets.spec import GovernanceSpec, ImpactLevelSpec, RegisterEntry, ReleaseSpec
from impact_assets.storage import migrate

from .conftest import parity_entry

T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
GOVERNANCE = GovernanceSpec(
    due_days={"review": 14, "rollback": 2, "block_release": 7, "notify": 14}, resolve_after_passes=3
)


def _entry(entry_id: str = "parity", action: str = "review") -> RegisterEntry:
    return parity_entry(entry_id, action=action, frameworks=["EU AI Act Art. 10"])


def _snapshot(
    conn,
    day: int,
    status: str,
    value: float,
    *,
    entry: RegisterEntry | None = None,
    version: str = "1",
    at: dt.datetime | None = None,
):
    entry = entry or _entry()
    result = EntryResult(entry.id, "{}", value, None, None, 1000, status, f"{status} at {value}")
    return write_snapshot(
        conn,
        assessment_id="a",
        partition_key=f"2026-03-{day:02d}",
        run_id=f"run-{day}-{status}",
        model_version=version,
        data_version="d",
        entries=(entry,),
        results=[result],
        governance=GOVERNANCE,
        taken_at=at or T0 + dt.timedelta(days=day),
    )


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "register.duckdb")) as connection:
        migrate(connection)
        yield connection


def _actions(conn):
    return conn.execute(
        "SELECT status, breach_count, action_type, owner, due_at FROM impact.governance_actions_current ORDER BY opened_at"
    ).fetchall()


def _events(conn):
    return [
        e
        for (e,) in conn.execute(
            "SELECT event FROM impact.governance_action_events ORDER BY event_at"
        ).fetchall()
    ]


def test_status_transitions_are_recorded_with_value_deltas(conn):
    for day, (status, value) in enumerate(
        [("pass", 0.95), ("warn", 0.85), ("breach", 0.7), ("pass", 0.92)], start=1
    ):
        _snapshot(conn, day, status, value)
    changes = conn.execute(
        "SELECT previous_status, status, previous_value, value, value_delta FROM impact.register_changes ORDER BY partition_key"
    ).fetchall()
    assert [(p, s) for p, s, *_ in changes] == [
        (None, "pass"),
        ("pass", "warn"),
        ("warn", "breach"),
        ("breach", "pass"),
    ]
    assert [round(d, 6) if d is not None else None for *_, d in changes] == [
        None,
        -0.1,
        -0.15,
        0.22,
    ]
    current = conn.execute("SELECT partition_key, status FROM impact.register_current").fetchall()
    assert current == [("2026-03-04", "pass")]


def test_a_breach_opens_one_action_and_later_breaches_are_recorded_on_it(conn):
    _snapshot(conn, 1, "breach", 0.7)
    _snapshot(conn, 2, "breach", 0.6)
    _snapshot(conn, 3, "warn", 0.85)
    _snapshot(conn, 4, "breach", 0.75)
    ((status, breaches, action_type, owner, due),) = _actions(conn)
    assert (status, breaches, action_type, owner) == (
        "open",
        3,
        "review",
        "fair-lending@lender.example",
    )
    assert due == T0 + dt.timedelta(days=1 + 14)
    assert _events(conn) == ["opened", "breach_recorded", "breach_recorded"]


def test_an_action_resolves_after_k_consecutive_passes_with_evidence(conn):
    _snapshot(conn, 1, "breach", 0.7)
    _snapshot(conn, 2, "pass", 0.95)
    _snapshot(conn, 3, "pass", 0.96)
    assert _actions(conn)[0][0] == "open"
    _snapshot(conn, 4, "warn", 0.88)  # a warn breaks the run of passes
    _snapshot(conn, 5, "pass", 0.95)
    _snapshot(conn, 6, "pass", 0.95)
    assert _actions(conn)[0][0] == "open"
    _snapshot(conn, 7, "pass", 0.97)
    status, evidence = conn.execute(
        "SELECT status, resolution_evidence FROM impact.governance_actions_current"
    ).fetchall()[0]
    assert status == "resolved"
    assert [e["partition"] for e in json.loads(evidence)] == [
        "2026-03-07",
        "2026-03-06",
        "2026-03-05",
    ]
    _snapshot(conn, 8, "breach", 0.5)  # a new breach after resolution opens a new action
    assert [a[0] for a in _actions(conn)] == ["resolved", "open"]


def test_an_open_action_past_its_due_date_is_flagged_overdue_once(conn):
    entry = _entry(action="rollback")  # due after 2 days
    _snapshot(conn, 1, "breach", 0.7, entry=entry)
    _snapshot(conn, 2, "warn", 0.85, entry=entry)
    assert "overdue" not in _events(conn)
    _snapshot(conn, 5, "warn", 0.85, entry=entry)
    _snapshot(conn, 6, "warn", 0.86, entry=entry)
    assert _events(conn).count("overdue") == 1
    assert conn.execute("SELECT overdue FROM impact.governance_actions_current").fetchall() == [
        (True,)
    ]


def test_rerunning_a_partition_adds_a_version_and_compares_with_the_earlier_one(conn):
    first = _snapshot(conn, 1, "pass", 0.95)
    second = _snapshot(conn, 1, "warn", 0.85)
    assert (first.snapshot_version, second.snapshot_version) == (1, 2)
    change = conn.execute(
        "SELECT previous_snapshot_id, previous_status, status FROM impact.register_changes WHERE snapshot_id = ?",
        [second.snapshot_id],
    ).fetchall()
    assert change == [(first.snapshot_id, "pass", "warn")]
    assert conn.execute("SELECT count(*) FROM impact.register_entries").fetchall() == [(2,)]


def test_two_writers_racing_on_the_same_file_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "race.duckdb")
    with duckdb.connect(path) as setup:
        migrate(setup)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with duckdb.connect(path) as conn:
                for i in range(15):
                    entry = _entry()
                    write_snapshot(
                        conn,
                        assessment_id="a",
                        partition_key="2026-03-01",
                        run_id=f"{name}-{i}",
                        model_version="1",
                        data_version=name,
                        entries=(entry,),
                        results=[EntryResult(entry.id, "{}", 0.7, None, None, 10, "breach", name)],
                        governance=GOVERNANCE,
                    )
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with duckdb.connect(path, read_only=True) as conn:
        versions = [
            v
            for (v,) in conn.execute(
                "SELECT snapshot_version FROM impact.register_snapshots ORDER BY 1"
            ).fetchall()
        ]
        mixed = conn.execute(
            "SELECT count(*) FROM impact.register_entries e JOIN impact.register_snapshots s USING (snapshot_id) WHERE e.reason <> s.data_version"
        ).fetchall()[0][0]
        open_actions = conn.execute(
            "SELECT count(*), max(breach_count) FROM impact.governance_actions_current WHERE status = 'open'"
        ).fetchall()[0]
    assert versions == list(range(1, 31))
    assert mixed == 0
    assert open_actions == (1, 30)


@pytest.mark.parametrize(
    ("statuses", "decision"),
    [
        ({"guard": "pass", "gate": "pass", "info": "breach"}, "approve"),
        ({"guard": "pass", "gate": "breach", "info": "pass"}, "hold"),
        ({"guard": "pass", "gate": "insufficient_data", "info": "pass"}, "hold"),
        ({"guard": "warn", "gate": "pass", "info": "pass"}, "approve"),
        ({"guard": "breach", "gate": "pass", "info": "pass"}, "rollback"),
        ({"guard": "insufficient_data", "gate": "pass", "info": "pass"}, "hold"),
    ],
)
def test_release_decision(statuses, decision):
    entries = [
        _entry("guard", "rollback"),
        _entry("gate", "block_release"),
        _entry("info", "notify"),
    ]
    assert release_decision(entries, statuses, ReleaseSpec())[0] == decision


def _level(
    impact: list[tuple[int, int]], mitigation: list[tuple[int, int, str | None]]
) -> ImpactLevelSpec:
    return ImpactLevelSpec.model_validate(
        {
            "impact": [
                {"question": f"q{i}", "points": p, "max": m} for i, (p, m) in enumerate(impact)
            ],
            "mitigation": [
                {"question": f"m{i}", "points": p, "max": m, "control": c}
                for i, (p, m, c) in enumerate(mitigation)
            ],
        }
    )


@pytest.mark.parametrize(
    ("raw", "mitigation", "statuses", "score", "level"),
    [
        (5, [(10, 10, None)], {}, 4.25, "I"),  # 25 % of 20 before the reduction: level I either way
        (5, [], {}, 5.0, "I"),  # exactly 25 %
        (6, [], {}, 6.0, "II"),  # 30 %
        (10, [], {}, 10.0, "II"),  # exactly 50 %
        (15, [], {}, 15.0, "III"),  # exactly 75 %
        (
            16,
            [(3, 3, "guard"), (2, 2, None), (3, 5, None)],
            {"guard": "pass"},
            13.6,
            "III",
        ),  # 8/10 mitigation: 16 * 0.85 = 13.6 (68 %)
        (
            16,
            [(3, 3, "guard"), (2, 2, None), (3, 5, None)],
            {"guard": "breach"},
            16.0,
            "IV",
        ),  # control failing: 5/10, no reduction (80 %)
        (16, [(7, 10, None)], {}, 16.0, "IV"),  # 70 % mitigation: below the 80 % bar
    ],
)
def test_impact_level_worked_examples(raw, mitigation, statuses, score, level):
    spec = _level([(raw, 20)], mitigation)
    result = impact_level(spec, statuses)
    assert result.score == pytest.approx(score)
    assert result.level == level
    assert result.max_raw_score == 20


def test_export_writes_the_history_of_a_version(conn, tmp_path: Path):
    _snapshot(conn, 1, "breach", 0.7, version="1")
    _snapshot(conn, 2, "pass", 0.95, version="2")
    written = export_audit(conn, "a", tmp_path / "exports", model_version="1")
    document = json.loads(written[0].read_text())
    assert [s["model_version"] for s in document["register_snapshots"]] == ["1"]
    assert (
        len(document["governance_actions"]) == 1
        and document["governance_actions"][0]["entry_id"] == "parity"
    )
    assert document["framework_tags"] == ["EU AI Act Art. 10"]
    assert {p.name for p in written} >= {
        "audit.json",
        "register_entries.csv",
        "governance_actions.csv",
        "release_decisions.csv",
    }
