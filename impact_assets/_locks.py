"""An exclusive lock on a folder, held by one process at a time (deliverers of lineage and notices)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def folder_lock(directory: Path) -> Iterator[None]:
    """Hold ``<directory>/.lock`` exclusively (waiting for another holder) while the block runs."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
