"""The impact register: evaluate entries against results and snapshot them in DuckDB."""

from impact_assets.register._evaluate import (
    RESULT_SOURCES,
    STATUSES,
    EntryResult,
    blocked_register,
    describe_ref,
    evaluate_entry,
    evaluate_register,
    status_for,
)
from impact_assets.register._snapshot import Snapshot, current_register, write_snapshot

__all__ = [
    "RESULT_SOURCES",
    "STATUSES",
    "EntryResult",
    "Snapshot",
    "blocked_register",
    "current_register",
    "describe_ref",
    "evaluate_entry",
    "evaluate_register",
    "status_for",
    "write_snapshot",
]
