"""Delivering notices: an outbox in the results database, drained channel by channel.

Notices are written in the same transaction as what caused them (a snapshot's breaches and actions, a
release recommendation, a failed run), so none is lost and none exists without its cause. The
deliverer (the notifications sensor under Dagster, ``impact-assets notify`` and the demo) sends, for
each channel, the notices it has not yet delivered, oldest first, and records each attempt in
``impact.notice_deliveries``:

* ``delivered`` — the channel accepted it; it is never sent there again;
* ``rejected`` — the channel refused it for good (an HTTP 4xx other than 408/429, an SMTP 5xx): the
  notice cannot be fixed by retrying, so it is recorded and passed over;
* ``failed`` — the channel is down or answered with a temporary error: the channel stops there and the
  next attempt starts again with that notice, so order is kept and nothing is skipped.

A folder lock keeps two deliverers from sending the same notice. Delivery is at least once in one case
only: a process killed between a channel's acceptance and the record of it. Each notice carries its
``notice_id`` (the ``Idempotency-Key`` header, the e-mail's ``Message-ID``) so a receiver can drop the
repeat.

Channels take plain HTTP (``requests``) and SMTP (the standard library's ``smtplib``) rather than a
multi-service library such as apprise: delivery needs to tell a permanent refusal from a temporary
one, which such libraries reduce to success or failure. Secrets come from environment variables named
in the spec and never appear in a delivery record, a log line or a notice; a webhook is named by its
host only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import smtplib
import ssl
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from impact_assets._locks import folder_lock
from impact_assets.settings import ProjectPaths
from impact_assets.spec import AssessmentSpec, FileChannel, SmtpChannel, WebhookChannel
from impact_assets.storage import SCHEMA, connect, migrate

__all__ = ["NoticeReport", "deliver_notices", "notices_file", "pending_notices"]

#: HTTP statuses that are temporary although 4xx.
_RETRYABLE_4XX = (408, 425, 429)


@dataclass
class NoticeReport:
    """What one delivery attempt did, per channel."""

    delivered: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)
    pending: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        channels = sorted({*self.delivered, *self.rejected, *self.failed, *self.pending})
        if not channels:
            return "no notices to deliver"
        parts = []
        for name in channels:
            text = f"{name}: {self.delivered[name]} delivered"
            if self.rejected[name]:
                text += f", {self.rejected[name]} rejected"
            if self.pending[name]:
                text += f", {self.pending[name]} pending"
            if name in self.failed:
                text += f" (not delivered: {self.failed[name]})"
            parts.append(text)
        return "notices " + "; ".join(parts)


class _Temporary(Exception):
    """The channel is down or asked to retry later."""


class _Permanent(Exception):
    """The channel refused this notice for good."""


def pending_notices(
    conn, assessment_id: str, channel: str, kinds: tuple[str, ...]
) -> list[tuple[str, dict]]:
    """Notices of ``kinds`` that ``channel`` has neither delivered nor rejected, oldest first."""
    rows = conn.execute(
        f"""SELECT n.notice_id, n.body FROM {SCHEMA}.notices n
            WHERE n.assessment_id = ? AND list_contains(?, n.kind) AND NOT EXISTS (
                SELECT 1 FROM {SCHEMA}.notice_deliveries d
                WHERE d.notice_id = n.notice_id AND d.channel = ? AND d.outcome IN ('delivered', 'rejected'))
            ORDER BY n.created_at, n.notice_id""",
        [assessment_id, list(kinds), channel],
    ).fetchall()
    return [(notice_id, json.loads(body)) for notice_id, body in rows]


def _text(notice: dict) -> str:
    """The notice for people: its subject, then its facts one per line."""
    skip = {"subject", "notice_id", "kind"}
    lines = [notice["subject"], ""]
    for key, value in notice.items():
        if key in skip or value in (None, "", [], {}):
            continue
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, list | dict):
            value = json.dumps(value, default=str)
        lines.append(f"{key.replace('_', ' ')}: {value}")
    lines.append(f"notice: {notice['notice_id']} ({notice['kind']})")
    return "\n".join(lines)


def _secret(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise _Temporary(f"the environment variable {variable} ({what}) is not set")
    return value


def _send_file(channel: FileChannel, paths: ProjectPaths, notice: dict) -> None:
    target = paths.expand(channel.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(notice, ensure_ascii=False, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _drop(record: logging.LogRecord) -> bool:
    return False


def _send_webhook(channel: WebhookChannel, notice: dict) -> None:
    url = channel.url or _secret(channel.url_env, "the webhook URL")  # type: ignore[arg-type]
    host = urlsplit(url).hostname or "?"
    headers = {"Idempotency-Key": notice["notice_id"]}
    if channel.token_env:
        headers["Authorization"] = f"Bearer {_secret(channel.token_env, 'the webhook token')}"
    payload = {"text": _text(notice)} if channel.format == "slack" else notice
    # urllib3 logs each request line at DEBUG, and a webhook's path can be its token
    quiet = logging.getLogger("urllib3.connectionpool")
    quiet.addFilter(_drop)
    try:
        response = requests.post(
            url, json=payload, headers=headers, timeout=channel.timeout_seconds
        )
    except requests.RequestException as exc:
        # the exception's text can hold the URL, and a webhook URL can hold its token
        raise _Temporary(f"{host} unreachable ({type(exc).__name__})") from None
    finally:
        quiet.removeFilter(_drop)
    if 200 <= response.status_code < 300:
        return
    reason = f"{host} answered HTTP {response.status_code}"
    if 400 <= response.status_code < 500 and response.status_code not in _RETRYABLE_4XX:
        raise _Permanent(reason)
    raise _Temporary(reason)


def _send_smtp(channel: SmtpChannel, notice: dict) -> None:
    message = EmailMessage()
    message["Subject"] = notice["subject"]
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["Message-ID"] = make_msgid(idstring=notice["notice_id"], domain="impact-assets")
    message.set_content(_text(notice))
    message.add_attachment(
        json.dumps(notice, indent=2, default=str).encode(),
        maintype="application",
        subtype="json",
        filename=f"notice-{notice['notice_id']}.json",
    )
    password = _secret(channel.password_env, "the SMTP password") if channel.password_env else None
    client = smtplib.SMTP_SSL if channel.security == "ssl" else smtplib.SMTP
    try:
        with client(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if channel.username and password is not None:
                smtp.login(channel.username, password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        reason = f"{channel.host}:{channel.port} answered SMTP {exc.smtp_code}"
        raise (_Permanent if exc.smtp_code >= 500 else _Temporary)(reason) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        reason = f"{channel.host}:{channel.port} refused every recipient (SMTP {codes})"
        raise (_Permanent if min(codes) >= 500 else _Temporary)(reason) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise _Temporary(
            f"{channel.host}:{channel.port} unreachable ({type(exc).__name__})"
        ) from None


def _send(channel, paths: ProjectPaths, notice: dict) -> None:
    if isinstance(channel, FileChannel):
        _send_file(channel, paths, notice)
    elif isinstance(channel, WebhookChannel):
        _send_webhook(channel, notice)
    else:
        _send_smtp(channel, notice)


def deliver_notices(
    spec: AssessmentSpec, paths: ProjectPaths, *, lock_timeout: float = 30
) -> NoticeReport:
    """Send every channel's pending notices of one assessment; record each attempt.

    Never raises for a channel that is down: the report says what is pending and why.
    """
    report = NoticeReport()
    settings = spec.notifications
    with folder_lock(paths.state_dir / "notifications"):
        with connect(paths.database, lock_timeout=lock_timeout) as conn:
            migrate(conn)
            work = {
                c.name: pending_notices(conn, spec.id, c.name, settings.on)
                for c in settings.channels
            }
        for channel in settings.channels:
            attempts = _drain(channel, paths, work[channel.name], report)
            if attempts:
                with connect(paths.database, lock_timeout=lock_timeout) as conn:
                    conn.executemany(
                        f"INSERT INTO {SCHEMA}.notice_deliveries VALUES (?, ?, ?, ?, ?)", attempts
                    )
    return report


def _drain(
    channel, paths: ProjectPaths, queue: list[tuple[str, dict]], report: NoticeReport
) -> list[tuple]:
    """Send ``queue`` to one channel until it fails; the attempts to record."""
    attempts: list[tuple] = []
    for k, (notice_id, notice) in enumerate(queue):
        try:
            _send(channel, paths, notice)
        except _Permanent as exc:
            attempts.append((notice_id, channel.name, _now(), "rejected", str(exc)))
            report.rejected[channel.name] += 1
            continue
        except _Temporary as exc:
            attempts.append((notice_id, channel.name, _now(), "failed", str(exc)))
            report.failed[channel.name] = str(exc)
            report.pending[channel.name] = len(queue) - k
            break
        attempts.append((notice_id, channel.name, _now(), "delivered", None))
        report.delivered[channel.name] += 1
    return attempts


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def notices_file(spec: AssessmentSpec, paths: ProjectPaths) -> Path | None:
    """Where the first file channel writes, if there is one."""
    for channel in spec.notifications.channels:
        if isinstance(channel, FileChannel):
            return paths.expand(channel.path)
    return None
