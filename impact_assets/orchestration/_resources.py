"""The results-database resource: ``dagster_duckdb.DuckDBResource`` that waits out another writer."""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from impact_assets.storage import DEFAULT_LOCK_TIMEOUT, connect

__all__ = ["ResultsDatabase"]


class ResultsDatabase(DuckDBResource):
    """The DuckDB file holding the ``impact`` schema, shared by every assessment of a project.

    Unlike its parent it waits for a lock held by another process (a concurrent run, a reader) with
    jittered exponential backoff for ``lock_timeout`` seconds, then fails the step with a
    ``StorageError`` naming the file and the process holding it; a damaged file fails at once, untouched.
    The connection is closed whether the step succeeds or fails.
    """

    lock_timeout: float = Field(
        default=DEFAULT_LOCK_TIMEOUT,
        description="Seconds to keep retrying while another process holds the database file.",
    )

    @contextmanager
    def get_connection(
        self, lock_timeout: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the resource's settings (a sensor passes a shorter ``lock_timeout``,
        so that its tick does not outlast its own timeout waiting for a run)."""
        conn = connect(
            self.database,
            lock_timeout=self.lock_timeout if lock_timeout is None else lock_timeout,
            config={"custom_user_agent": "dagster", **self.connection_config},
        )
        try:
            yield conn
        finally:
            conn.close()
