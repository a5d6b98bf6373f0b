"""Delivering lineage: a cursor over Dagster's event log that advances only after delivery.

Dagster's event log already holds, durably, everything that happened in every run. The deliverer reads
the runs that finished after its cursor (their success, failure or cancellation records, in the order
they finished), builds each run's OpenLineage events (:func:`run_events`) and sends them one by one,
saving its position after every event. So:

* lineage never fails an assessment: nothing is sent from inside a run;
* nothing is lost while the backend is down: the cursor stays on the first undelivered event and the
  next attempt (the lineage sensor's next tick, or ``impact-assets lineage``) starts there;
* events arrive in order per run, and once: an event is only passed over after the transport accepted
  it — or after the backend rejected it with a 4xx, which is a malformed event that no retry can fix:
  it is recorded in ``rejected.jsonl`` and reported, not retried forever.

The cursor (``cursor.json``) and the rejections live in ``<state_dir>/lineage/``, guarded by a file lock
so that the sensor and the command line never deliver the same event twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import requests
from dagster._core.events import DagsterEventType
from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.noop import NoopConfig, NoopTransport

from impact_assets._locks import folder_lock
from impact_assets.errors import LineageConfigError
from impact_assets.lineage._catalog import LineageCatalog
from impact_assets.lineage._events import run_events

__all__ = ["DeliveryReport", "deliver_pending", "lineage_client", "pending_lineage"]

_FINISHED = (
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELED,
)
_BATCH = 100


@dataclass
class DeliveryReport:
    """What one delivery attempt did, and what is left."""

    delivered: int = 0
    rejected: list[str] = field(default_factory=list)
    pending_events: int = 0
    pending_runs: int = 0
    error: str | None = None

    def summary(self) -> str:
        text = f"{self.delivered} lineage events delivered, {self.pending_events} pending in {self.pending_runs} runs"
        if self.rejected:
            text += f", {len(self.rejected)} rejected by the backend"
        if self.error:
            text += f"; not delivered: {self.error}"
        return text


CONFIG_FILE_MISSING = "OPENLINEAGE_CONFIG names {path}, which does not exist"
TRANSPORT_INVALID = "the OpenLineage transport configured in {where} cannot be used: {message}"


def _configured_in() -> str:
    """Where the standard OpenLineage configuration comes from, for error messages."""
    if os.getenv("OPENLINEAGE_CONFIG"):
        return os.environ["OPENLINEAGE_CONFIG"]
    for folder in (Path.cwd(), Path.home() / ".openlineage"):
        if (folder / "openlineage.yml").is_file():
            return str(folder / "openlineage.yml")
    return "the OPENLINEAGE_* environment variables"


def lineage_client(state_dir: Path) -> OpenLineageClient:
    """The OpenLineage client configured the standard way, else writing JSON lines under ``state_dir``.

    Standard configuration: ``OPENLINEAGE_CONFIG`` or an ``openlineage.yml`` (working directory, then
    ``~/.openlineage``), ``OPENLINEAGE__TRANSPORT__*`` variables, ``OPENLINEAGE_URL``, or
    ``OPENLINEAGE_DISABLED=true``. Without any, events go to ``<state_dir>/lineage/events.jsonl``.

    Raises:
        LineageConfigError: ``OPENLINEAGE_CONFIG`` names a missing file, or the configured transport
            cannot be built (an unknown type, a missing option); the message says where it is configured.
    """
    named = os.getenv("OPENLINEAGE_CONFIG")
    if named and not Path(named).is_file():
        raise LineageConfigError(
            CONFIG_FILE_MISSING.format(path=named), context={"variable": "OPENLINEAGE_CONFIG"}
        )
    try:
        # The configuration is read without resolving a transport (which would warn about a missing one).
        config = OpenLineageClient(transport=NoopTransport(NoopConfig())).config
        if (
            os.getenv("OPENLINEAGE_DISABLED", "").strip().lower() == "true"
            or os.getenv("OPENLINEAGE_URL")
            or (config.transport and config.transport.get("type"))
        ):
            return OpenLineageClient()
    except (ImportError, ValueError, TypeError, KeyError, AttributeError) as exc:
        where = _configured_in()
        raise LineageConfigError(
            TRANSPORT_INVALID.format(where=where, message=f"{type(exc).__name__}: {exc}"),
            context={"file": where},
        ) from exc
    path = state_dir / "lineage" / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(
        transport=FileTransport(FileConfig(log_file_path=str(path), append=True))
    )


def _instance_key(instance: dg.DagsterInstance) -> str:
    """Which event log a cursor's storage ids belong to: a digest of its storage's configuration."""
    if instance.is_ephemeral:
        return "ephemeral"
    data = instance.get_ref().event_storage_data
    text = f"{data.module_name}.{data.class_name}:{data.config_yaml}" if data else "default"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Cursor:
    """How far delivery has come in one instance's event log.

    The storage ids it holds mean nothing in another instance's event log: a cursor written for
    another instance (a project moved from sqlite to PostgreSQL, say) starts again from the
    beginning, so that none of the new instance's runs is taken for delivered. A cursor written
    before it recorded its instance is taken to be the current instance's.
    """

    def __init__(self, directory: Path, instance: dg.DagsterInstance) -> None:
        self.path = directory / "cursor.json"
        self.instance = _instance_key(instance)
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        if data.get("instance", self.instance) != self.instance:
            data = {}
        self.through: int = data.get("through", 0)
        self.run_id: str | None = data.get("run_id")
        self.sent: int = data.get("sent", 0)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "instance": self.instance,
                    "through": self.through,
                    "run_id": self.run_id,
                    "sent": self.sent,
                }
            )
        )
        os.replace(tmp, self.path)


def _finished_runs(instance: dg.DagsterInstance, after: int) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for event_type in _FINISHED:
        cursor = None
        while True:
            result = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after),
                limit=_BATCH,
                cursor=cursor,
                ascending=True,
            )
            found += [(r.storage_id, r.run_id) for r in result.records]
            if not result.has_more:
                break
            cursor = result.cursor
    return sorted(found)


def _rejection(exc: Exception) -> str | None:
    """The backend's refusal of a malformed event (a 4xx other than timeout/rate limit), else None."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if (
        isinstance(exc, requests.HTTPError)
        and status
        and 400 <= status < 500
        and status not in (408, 429)
    ):
        return f"HTTP {status}: {(response.text or '')[:500]}"
    return None


def deliver_pending(
    instance: dg.DagsterInstance,
    catalog: LineageCatalog,
    state_dir: Path,
    *,
    client: OpenLineageClient | None = None,
    max_seconds: float = 60.0,
) -> DeliveryReport:
    """Send the lineage of every run finished since the cursor; stop at the first unreachable backend.

    Args:
        instance: The Dagster instance whose event log is read.
        catalog: What the assessments' assets read and write.
        state_dir: The project's state folder (cursor, rejections, default event file).
        client: The OpenLineage client; :func:`lineage_client` by default.
        max_seconds: Stop starting new runs after this long (the rest stays pending).
    """
    directory = state_dir / "lineage"
    report = DeliveryReport()
    if client is None:
        try:
            client = lineage_client(state_dir)
        except LineageConfigError as exc:  # nothing can be sent: everything stays pending
            pending = pending_lineage(instance, catalog, state_dir)
            pending.rejected, pending.error = [], str(exc)
            return pending
    deadline = time.monotonic() + max_seconds
    with folder_lock(directory):
        cursor = _Cursor(directory, instance)
        runs = _finished_runs(instance, cursor.through)
        for storage_id, run_id in runs:
            events = run_events(instance, run_id, catalog)
            start = cursor.sent if cursor.run_id == run_id else 0
            if report.error is not None or time.monotonic() > deadline:
                report.pending_events += len(events) - start
                report.pending_runs += 1 if len(events) > start else 0
                continue
            cursor.run_id, cursor.sent = run_id, start
            for event in events[start:]:
                try:
                    client.emit(event)
                    report.delivered += 1
                except (
                    Exception
                ) as exc:  # any transport failure: keep the event, or record a rejection
                    reason = _rejection(exc)
                    if reason is None:
                        report.error = f"{type(exc).__name__}: {exc}"
                        break
                    report.rejected.append(reason)
                    with (directory / "rejected.jsonl").open("a", encoding="utf-8") as out:
                        out.write(
                            json.dumps(
                                {"reason": reason, "event": json.loads(Serde.to_json(event))}
                            )
                            + "\n"
                        )
                cursor.sent += 1
                cursor.save()
            if report.error is not None:
                report.pending_events += len(events) - cursor.sent
                report.pending_runs += 1
                continue
            cursor.through, cursor.run_id, cursor.sent = storage_id, None, 0
            cursor.save()
    return report


def pending_lineage(
    instance: dg.DagsterInstance, catalog: LineageCatalog, state_dir: Path
) -> DeliveryReport:
    """How many events and runs wait for delivery, without sending anything."""
    directory = state_dir / "lineage"
    report = DeliveryReport()
    cursor = _Cursor(directory, instance)
    for _, run_id in _finished_runs(instance, cursor.through):
        count = len(run_events(instance, run_id, catalog))
        left = count - (cursor.sent if cursor.run_id == run_id else 0)
        if left > 0:
            report.pending_events += left
            report.pending_runs += 1
    rejected = directory / "rejected.jsonl"
    if rejected.exists():
        report.rejected = [
            json.loads(line)["reason"] for line in rejected.read_text().splitlines() if line
        ]
    return report
