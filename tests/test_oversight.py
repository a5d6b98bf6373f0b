"""People in the loop: every transition of a governance action, waivers, escalation, and the notices
they put in the outbox — on a real DuckDB file, with snapshots written as the register writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from impact_assets.errors import OversightError
from impact_assets.oversight import decide_action, find_action
from impact_assets.register import EntryResult, write_snapshot
from impact_assets.spec import GovernanceSpec
from impact_assets.storage import migrate

from .conftest import parity_entry

T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
GOVERNANCE = GovernanceSpec(
    due_days={"review": 14, "rollback": 2, "block_release": 7, "notify": 14},
    resolve_after_passes=3,
    escalate_after_breaches=3,
    max_waiver_days=30,
)
ENTRY = parity_entry(escalate_to="cro@lender.example")


def _day(conn, day: int, status: str, value: float, *, governance: GovernanceSpec = GOVERNANCE):
    result = EntryResult(ENTRY.id, "{}", value, None, None, 1000, status, f"{status} at {value}")
    return write_snapshot(
        conn,
        assessment_id="a",
        partition_key=f"2026-03-{day:02d}",
        run_id=f"run-{day}",
        model_version="1",
        data_version="d",
        entries=(ENTRY,),
        results=[result],
        governance=governance,
        taken_at=T0 + dt.timedelta(days=day),
    )


def _at(day: int, hour: int = 12) -> dt.datetime:
    return T0 + dt.timedelta(days=day, hours=hour - 3)


def _decide(conn, decision: str, *, day: int, **fields):
    (action_id,) = conn.execute("SELECT action_id FROM impact.governance_actions").fetchall()[0]
    fields.setdefault("by", "Ana Reviewer")
    return decide_action(
        conn, "a", action_id, decision, governance=GOVERNANCE, at=_at(day), **fields
    )


def _state(conn) -> dict:
    frame = conn.execute("SELECT * FROM impact.governance_action_state").df()
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def _events(conn) -> list[tuple]:
    return conn.execute(
        "SELECT event, actor FROM impact.governance_action_events ORDER BY event_seq"
    ).fetchall()


def _notices(conn) -> list[str]:
    return [
        k
        for (k,) in conn.execute(
            "SELECT kind FROM impact.notices ORDER BY created_at, kind"
        ).fetchall()
    ]


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "register.duckdb")) as connection:
        migrate(connection)
        yield connection


def test_acknowledge_then_resolve_records_who_when_and_why_as_events(conn):
    _day(conn, 1, "breach", 0.7)
    before = conn.execute("SELECT * FROM impact.governance_action_events").fetchall()
    state = _decide(conn, "acknowledge", day=1, rationale="looking into the April cohort")
    assert state.last_state == "acknowledged" and state.acknowledged_by == "Ana Reviewer"
    with pytest.raises(OversightError, match="is acknowledged: it cannot be acknowledged"):
        _decide(conn, "acknowledge", day=1, by="Bo")
    with pytest.raises(OversightError, match="rationale is required to resolve"):
        _decide(conn, "resolve", day=2, rationale="   ")
    _decide(
        conn, "resolve", day=2, by="Bo Lead", rationale="threshold moved after the policy review"
    )
    row = _state(conn)
    assert (row["last_state"], row["resolved_by"], row["resolution_evidence"]) == (
        "resolved",
        "Bo Lead",
        "threshold moved after the policy review",
    )
    # append-only: the earlier rows are untouched, each decision is one more row naming its actor
    after = conn.execute("SELECT * FROM impact.governance_action_events").fetchall()
    assert after[: len(before)] == before
    assert _events(conn) == [
        ("opened", "system"),
        ("acknowledged", "Ana Reviewer"),
        ("resolved", "Bo Lead"),
    ]
    os_users = conn.execute(
        "SELECT os_user FROM impact.governance_action_events WHERE actor <> 'system'"
    ).fetchall()
    assert all(user for (user,) in os_users)
    # a resolved episode stays closed: the next breach opens a new action
    _day(conn, 3, "breach", 0.7)
    assert conn.execute("SELECT count(*) FROM impact.governance_actions").fetchall() == [(2,)]


def test_reassignment_changes_the_owner_and_comments_keep_the_state(conn):
    _day(conn, 1, "breach", 0.7)
    _decide(conn, "assign", day=1, assignee="model-validation@lender.example")
    _decide(conn, "comment", day=1, rationale="asked the data team for the April extract")
    row = _state(conn)
    assert row["owner"] == "model-validation@lender.example"
    assert row["opened_for"] == "fair-lending@lender.example"
    assert (row["last_state"], row["comments"]) == ("opened", 1)
    with pytest.raises(OversightError, match="already owned by model-validation"):
        _decide(conn, "assign", day=1, assignee="model-validation@lender.example")


def test_an_automatic_resolution_is_recorded_as_resolved_by_the_system(conn):
    _day(conn, 1, "breach", 0.7)
    for day in (2, 3, 4):
        _day(conn, day, "pass", 0.95)
    assert _state(conn)["resolved_by"] == "system"


def test_a_waiver_holds_through_lesser_breaches_and_reopens_on_a_worse_one(conn):
    _day(conn, 1, "breach", 0.75)
    _decide(
        conn,
        "waive",
        day=1,
        approver="Head of Credit",
        expires_on=dt.date(2026, 3, 20),
        rationale="known seasonal effect; remediation planned",
    )
    _day(conn, 2, "breach", 0.78)  # better than waived: the waiver holds
    assert _state(conn)["last_state"] == "waived"
    _day(conn, 3, "breach", 0.70)  # worse than waived
    row = _state(conn)
    assert row["last_state"] == "reopened"
    assert _events(conn)[-2:] == [("breach_recorded", "system"), ("reopened", "system")]
    assert "waiver_reopened" in _notices(conn)
    current = conn.execute("SELECT status FROM impact.governance_actions_current").fetchall()
    assert current == [("open",)]


def test_a_waiver_reopens_by_itself_on_expiry(conn):
    _day(conn, 1, "breach", 0.75)
    _decide(
        conn,
        "waive",
        day=1,
        approver="Head of Credit",
        expires_on=dt.date(2026, 3, 5),
        rationale="accepted until the retrain",
    )
    _day(conn, 4, "warn", 0.85)  # still inside the waiver (it holds through 2026-03-05)
    assert _state(conn)["last_state"] == "waived"
    _day(conn, 6, "warn", 0.85)
    assert _state(conn)["last_state"] == "reopened"
    (detail,) = conn.execute(
        "SELECT detail FROM impact.governance_action_events WHERE event = 'reopened'"
    ).fetchall()[0]
    assert "the waiver by Ana Reviewer expired on 2026-03-05" in detail
    # the current view judges the waiver against the clock too: this one ended in March
    assert conn.execute("SELECT status FROM impact.governance_actions_current").fetchall() == [
        ("open",)
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"approver": "Head of Credit", "rationale": "r"}, "needs an expiry date"),
        (
            {"approver": "Head of Credit", "rationale": "r", "expires_on": dt.date(2026, 4, 30)},
            "at most 30",
        ),
        (
            {"approver": "Ana Reviewer", "rationale": "r", "expires_on": dt.date(2026, 3, 9)},
            "own waiver",
        ),
        ({"rationale": "r", "expires_on": dt.date(2026, 3, 9)}, "needs an approver"),
        (
            {"approver": "Head of Credit", "expires_on": dt.date(2026, 3, 9)},
            "rationale is required",
        ),
        (
            {"approver": "Head of Credit", "rationale": "r", "expires_on": dt.date(2026, 3, 1)},
            "not after today",
        ),
    ],
)
def test_a_waiver_that_breaks_the_policy_is_refused_and_nothing_is_written(conn, fields, message):
    _day(conn, 1, "breach", 0.75)
    before = _events(conn)
    with pytest.raises(OversightError, match=message):
        _decide(conn, "waive", day=1, **fields)
    assert _events(conn) == before


def test_unknown_or_ambiguous_action_ids_are_refused(conn):
    _day(conn, 1, "breach", 0.7)
    with pytest.raises(
        OversightError, match=r"no governance action 'deadbeef' in assessment a \(live actions: "
    ):
        decide_action(conn, "a", "deadbeef", "acknowledge", by="Ana", governance=GOVERNANCE)
    with pytest.raises(OversightError, match="at least 6 characters"):
        decide_action(conn, "a", "ab", "acknowledge", by="Ana", governance=GOVERNANCE)
    with pytest.raises(OversightError, match="reserved"):
        _decide(conn, "acknowledge", day=1, by="System")
    (action_id,) = conn.execute("SELECT action_id FROM impact.governance_actions").fetchall()[0]
    assert find_action(conn, "a", action_id[:8]).action_id == action_id
    assert _events(conn) == [("opened", "system")]


def test_an_overdue_action_escalates_once_to_the_entrys_escalation_owner(conn):
    _day(conn, 1, "breach", 0.7)
    _decide(conn, "acknowledge", day=1)
    for day in range(2, 20):  # due after 14 days; still warning, never passing
        _day(conn, day, "warn", 0.85)
    events = [e for e, _ in _events(conn)]
    assert events.count("overdue") == 1 and events.count("escalated") == 1
    row = _state(conn)
    assert row["escalated_to"] == "cro@lender.example"
    assert _notices(conn).count("escalation") == 1
    assert conn.execute("SELECT overdue FROM impact.governance_actions_current").fetchall() == [
        (True,)
    ]


def test_repeated_breaches_in_one_episode_escalate_once(conn):
    for day in range(1, 7):
        _day(conn, day, "breach", 0.7)
    events = [e for e, _ in _events(conn)]
    assert events.count("escalated") == 1
    (detail,) = conn.execute(
        "SELECT detail FROM impact.governance_action_events WHERE event = 'escalated'"
    ).fetchall()[0]
    assert "3 breaches in one episode" in detail


def test_a_new_action_and_a_new_breach_each_put_one_notice_in_the_outbox(conn):
    _day(conn, 1, "breach", 0.7)  # new action
    _day(conn, 2, "breach", 0.7)  # the same breach continues: no notice
    _day(conn, 3, "warn", 0.85)
    _day(conn, 4, "breach", 0.7)  # breaches anew on the live action
    assert _notices(conn) == ["action_opened", "breach", "escalation"]  # the third breach escalates
    (body,) = conn.execute(
        "SELECT body FROM impact.notices WHERE kind = 'action_opened'"
    ).fetchall()[0]
    assert '"owner": "fair-lending@lender.example"' in body and '"value": 0.7' in body


def test_the_monitoring_record_holds_breaches_and_human_decisions_as_json_and_html(
    conn, tmp_path: Path
):
    import json

    from impact_assets.register import export_audit

    _day(conn, 1, "breach", 0.7)
    _decide(conn, "acknowledge", day=1, rationale="April <cohort> & branch 12 under review")
    written = export_audit(conn, "a", tmp_path / "exports", model_version="1")
    document = json.loads(written[0].read_text())
    (decision,) = document["human_decisions"]
    assert (decision["decision"], decision["by"], decision["rationale"]) == (
        "acknowledged",
        "Ana Reviewer",
        "April <cohort> & branch 12 under review",
    )
    assert [b["entry_id"] for b in document["breaches"]] == ["parity"]
    assert [n["kind"] for n in document["notices"]] == ["action_opened"]
    page = (written[1]).read_text()
    assert written[1].name == "monitoring_record.html"
    assert "April &lt;cohort&gt; &amp; branch 12 under review" in page
    assert '<th scope="col">rationale</th>' in page and "<script" not in page
    assert "Post-market monitoring record: a, model version 1" in page


def test_re_assessing_earlier_days_does_not_resolve_a_later_breach(conn):
    for day in (1, 2, 3):
        _day(conn, day, "pass", 0.95)
    _day(conn, 5, "breach", 0.7)
    for day in (1, 2, 3):  # their outcomes arrived: new snapshot versions of earlier days, passing
        _day(conn, day, "pass", 0.95)
    assert _state(conn)["last_state"] == "opened"
    for day in (6, 7, 8):
        _day(conn, day, "pass", 0.95)
    assert _state(conn)["last_state"] == "resolved"
