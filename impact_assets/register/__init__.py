"""The impact register: evaluate entries against results and snapshot them in DuckDB."""

from impact_assets.register._evaluate import (
    RESULT_SOURCES,
    STATUSES,
    CohortState,
    EntryResult,
    blocked_register,
    describe_ref,
    evaluate_awaited,
    evaluate_entry,
    evaluate_register,
    status_for,
)
from impact_assets.register._export import AUDIT_TABLES, export_audit
from impact_assets.register._governance import (
    ImpactLevel,
    apply_governance,
    impact_level,
    release_decision,
)
from impact_assets.register._snapshot import (
    Snapshot,
    by_severity,
    current_register,
    write_snapshot,
)

__all__ = [
    "AUDIT_TABLES",
    "RESULT_SOURCES",
    "STATUSES",
    "CohortState",
    "EntryResult",
    "ImpactLevel",
    "Snapshot",
    "apply_governance",
    "blocked_register",
    "by_severity",
    "current_register",
    "describe_ref",
    "evaluate_awaited",
    "evaluate_entry",
    "evaluate_register",
    "export_audit",
    "impact_level",
    "release_decision",
    "status_for",
    "write_snapshot",
]
