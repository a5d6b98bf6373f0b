"""Opening the results database: wait for another process's lock, refuse a damaged file clearly."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from impact_assets.errors import StorageError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "connect"]

#: Seconds to keep retrying a results database that another process holds open.
DEFAULT_LOCK_TIMEOUT = 120.0

LOCKED = (
    "the results database {file} is held by another process ({holder}) and was still locked after "
    "{waited:.1f} s of retries; wait for that process to finish, or raise lock_timeout"
)
UNREADABLE = (
    "the results database {file} cannot be opened ({message}); it was left untouched: restore it "
    "from a backup, or move it away to start a new one"
)

_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?:\. See also|$)")


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    return "Could not set lock" in str(exc)


def connect(
    database: str | Path,
    *,
    read_only: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    config: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open ``database``, retrying with jittered exponential backoff while another process locks it.

    DuckDB lets one process write a file at a time (and no other process read it meanwhile), so a
    second assessment run, a sensor or ``impact-assets register`` waits here for the first to close it.

    Args:
        database: Path of the DuckDB file (created, with its folder, when missing and not read-only).
        read_only: Open without write access.
        lock_timeout: Seconds to keep retrying a lock conflict before giving up.
        config: DuckDB configuration options.

    Raises:
        StorageError: The file stayed locked for ``lock_timeout`` seconds (the message names the
            process holding it), or it is not a readable DuckDB database (nothing is written to it).
    """
    path = str(database)
    if path != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    delay = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=dict(config or {}))
        except duckdb.Error as exc:
            waited = time.monotonic() - started
            if not _is_lock_conflict(exc):
                raise StorageError(
                    UNREADABLE.format(file=path, message=exc), context={"file": path}
                ) from exc
            if waited >= lock_timeout:
                holder = _HOLDER.search(str(exc))
                raise StorageError(
                    LOCKED.format(
                        file=path,
                        holder=holder.group(1) if holder else "unknown process",
                        waited=waited,
                    ),
                    context={"file": path},
                ) from exc
            time.sleep(min(delay * random.uniform(0.5, 1.5), lock_timeout - waited))
            delay = min(delay * 2, 2.0)
