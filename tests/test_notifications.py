"""Notices delivered through the outbox to a real local HTTP server and a real local SMTP server
(aiosmtpd) on loopback ports: nothing lost while a channel is down, each notice once, a 4xx recorded
and not retried, no secret anywhere."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from impact_assets import discover_assessments
from impact_assets.oversight import deliver_notices, record_notice
from impact_assets.storage import connect, migrate

from ._servers import Backend, free_port
from .conftest import DEMO_SPEC, alone

TOKEN = "tok-7f3a-SECRET"
HOOK_PATH = "/services/T000/B000/hook-SECRET-PATH"
PASSWORD = "pw-SECRET-93"


class Inbox:
    """An SMTP server's handler: keeps each message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == PASSWORD.encode())


class Smtp:
    """aiosmtpd on a fixed loopback port, started and stopped at will (stopped: the channel is down)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.inbox.authenticate,
            auth_require_tls=False,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def servers():
    http, smtp = Backend(), Smtp()
    yield http, smtp
    http.stop()
    smtp.stop()


def _assessment(tmp_path: Path, http: Backend, smtp: Smtp, monkeypatch):
    monkeypatch.setenv("IMPACT_TEST_HOOK", f"http://127.0.0.1:{http.port}{HOOK_PATH}")
    monkeypatch.setenv("IMPACT_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("IMPACT_TEST_SMTP_PASSWORD", PASSWORD)
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["notifications"] = {
        "channels": [
            {"kind": "file"},
            {
                "kind": "webhook",
                "name": "hook",
                "url_env": "IMPACT_TEST_HOOK",
                "token_env": "IMPACT_TEST_TOKEN",
                "timeout_seconds": 2,
            },
            {
                "kind": "smtp",
                "name": "mail",
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "none",
                "sender": "impact@lender.example",
                "to": ["fair-lending@lender.example"],
                "username": "impact",
                "password_env": "IMPACT_TEST_SMTP_PASSWORD",
                "timeout_seconds": 2,
            },
        ]
    }
    paths = alone(spec, tmp_path / "state")
    (assessment,) = discover_assessments(paths)
    with connect(paths.database) as conn:
        migrate(conn)
    return assessment


def _notice(assessment, subject: str, kind: str = "action_opened") -> str:
    with connect(assessment.paths.database) as conn:
        return record_notice(
            conn,
            assessment_id=assessment.id,
            kind=kind,
            subject=subject,
            at=dt.datetime.now(dt.UTC),
            details={"owner": "fair-lending@lender.example", "value": 0.71},
            entry_id="approval_parity_sex",
        )


def _deliveries(assessment) -> list[tuple]:
    with connect(assessment.paths.database, read_only=True) as conn:
        return conn.execute(
            "SELECT channel, outcome, detail FROM impact.notice_deliveries ORDER BY attempted_at"
        ).fetchall()


def test_channels_down_for_two_runs_lose_nothing_then_get_each_notice_once(
    tmp_path, servers, monkeypatch, caplog, capfd
):
    http, smtp = servers
    assessment = _assessment(tmp_path, http, smtp, monkeypatch)
    caplog.set_level(logging.DEBUG)
    ids = [_notice(assessment, "first breach")]
    first = deliver_notices(assessment.spec, assessment.paths)
    ids.append(_notice(assessment, "second breach"))
    second = deliver_notices(assessment.spec, assessment.paths)
    assert first.delivered["file"] == 1 and second.delivered["file"] == 1
    for report, pending in ((first, 1), (second, 2)):
        assert report.pending["hook"] == pending and report.pending["mail"] == pending
        assert "127.0.0.1 unreachable" in report.failed["hook"]
    assert http.received == [] and smtp.inbox.messages == []

    http.start()
    smtp.start()
    third = deliver_notices(assessment.spec, assessment.paths)
    assert (third.delivered["hook"], third.delivered["mail"], third.delivered["file"]) == (2, 2, 0)
    assert [n["notice_id"] for n in http.received] == ids  # in order, once each
    assert http.authorizations == [f"Bearer {TOKEN}"] * 2
    assert [m["Subject"] for m in smtp.inbox.messages] == ["first breach", "second breach"]
    assert all(ids[k] in smtp.inbox.messages[k]["Message-ID"] for k in range(2))
    assert smtp.inbox.logins[0] == (b"impact", PASSWORD.encode())
    fourth = deliver_notices(assessment.spec, assessment.paths)
    assert fourth.summary() == "no notices to deliver"
    assert len(http.received) == 2 and len(smtp.inbox.messages) == 2
    lines = (
        (assessment.paths.state_dir / "notifications" / "notices.jsonl").read_text().splitlines()
    )
    assert [json.loads(line)["notice_id"] for line in lines] == ids

    # no secret in delivery records, notices, reports or anything logged or printed
    with connect(assessment.paths.database, read_only=True) as conn:
        stored = json.dumps(
            conn.execute("SELECT * FROM impact.notice_deliveries").fetchall()
            + conn.execute("SELECT * FROM impact.notices").fetchall(),
            default=str,
        )
    out, err = capfd.readouterr()
    seen = " ".join(
        [stored, caplog.text, out, err, *(r.summary() for r in (first, second, third, fourth))]
    )
    for secret in (TOKEN, HOOK_PATH, PASSWORD, "SECRET"):
        assert secret not in seen


def test_a_4xx_is_recorded_and_not_retried_while_later_notices_go_through(
    tmp_path, servers, monkeypatch
):
    http, smtp = servers
    assessment = _assessment(tmp_path, http, smtp, monkeypatch)
    http.refuse = lambda notice: notice["subject"] == "malformed"
    http.start()
    smtp.start()
    _notice(assessment, "malformed")
    _notice(assessment, "fine")
    report = deliver_notices(assessment.spec, assessment.paths)
    assert (report.rejected["hook"], report.delivered["hook"]) == (1, 1)
    assert [n["subject"] for n in http.received] == ["fine"]
    again = deliver_notices(assessment.spec, assessment.paths)
    assert again.rejected["hook"] == 0 and again.delivered["hook"] == 0
    hook = [(o, d) for c, o, d in _deliveries(assessment) if c == "hook"]
    assert hook == [("rejected", "127.0.0.1 answered HTTP 400"), ("delivered", None)]


def test_a_missing_secret_keeps_the_notice_pending_and_names_the_variable(
    tmp_path, servers, monkeypatch
):
    http, smtp = servers
    assessment = _assessment(tmp_path, http, smtp, monkeypatch)
    monkeypatch.delenv("IMPACT_TEST_TOKEN")
    http.start()
    smtp.start()
    _notice(assessment, "breach")
    report = deliver_notices(assessment.spec, assessment.paths)
    assert (
        report.failed["hook"]
        == "the environment variable IMPACT_TEST_TOKEN (the webhook token) is not set"
    )
    assert report.pending["hook"] == 1 and report.delivered["mail"] == 1
    assert http.received == []


def test_only_the_kinds_asked_for_are_sent(tmp_path, servers, monkeypatch):
    http, smtp = servers
    assessment = _assessment(tmp_path, http, smtp, monkeypatch)
    spec = assessment.spec.model_copy(
        update={
            "notifications": assessment.spec.notifications.model_copy(
                update={"on": ("run_failed",)}
            )
        }
    )
    http.start()
    smtp.start()
    _notice(assessment, "a breach", kind="breach")
    _notice(assessment, "the run failed", kind="run_failed")
    deliver_notices(spec, assessment.paths)
    assert [n["subject"] for n in http.received] == ["the run failed"]
