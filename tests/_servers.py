"""Processes and servers the end-to-end tests start: free ports, GraphQL calls, bounded waits, group
shutdown, a lineage backend."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait_for(
    condition: Callable[[], T | None],
    seconds: float,
    what: str,
    process: subprocess.Popen,
    log: Path,
) -> T:
    """Poll ``condition`` every 2 s until it is truthy; fail with the log's tail if the process exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{process.args[0]} exited ({process.returncode}) while waiting for {what}:\n"
                f"{log.read_text()[-3000:]}"
            )
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"timed out after {seconds} s waiting for {what}:\n{log.read_text()[-3000:]}")


def start_group(
    command: list[str], *, cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen:
    """Start ``command`` in a process group of its own (Dagster's servers may ignore SIGTERM)."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not ended within ``grace`` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def stop_strays(marker: str, grace: float = 30) -> list[int]:
    """Stop every process whose command line mentions ``marker`` (a test's temporary folder).

    ``dagster-daemon`` starts its code server in a session of its own, so stopping the daemon's
    process group leaves it running; the test's folder in its instance reference finds it.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found.append(int(entry.name))
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in found:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found


class Backend:
    """A lineage backend on a local port: records what it accepts, can refuse some events with 400."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.received: list[dict] = []
        self.authorizations: list[str | None] = []
        self.refuse = lambda event: False
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if backend.refuse(event):
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b'{"error": "malformed event"}')
                    return
                backend.received.append(event)
                backend.authorizations.append(self.headers.get("Authorization"))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
