"""The audit export: everything the register knows about a model version, as JSON and CSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd

from impact_assets.storage import SCHEMA

__all__ = ["AUDIT_TABLES", "export_audit"]

#: Exported tables: name -> query over one assessment (``?`` = assessment id) and, optionally, a version (``$version``).
AUDIT_TABLES: dict[str, str] = {
    "register_snapshots": f"SELECT * FROM {SCHEMA}.register_snapshots WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY partition_key, snapshot_version",
    "register_entries": f"""SELECT s.partition_key, s.snapshot_version, s.model_version, e.* FROM {SCHEMA}.register_entries e
        JOIN {SCHEMA}.register_snapshots s USING (snapshot_id) WHERE s.assessment_id = ? AND ($version IS NULL OR s.model_version = $version)
        ORDER BY s.partition_key, s.snapshot_version, e.entry_id""",
    "register_changes": f"""SELECT c.* FROM {SCHEMA}.register_changes c JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
        WHERE s.assessment_id = ? AND ($version IS NULL OR s.model_version = $version) ORDER BY c.partition_key, c.changed_at, c.entry_id""",
    "governance_actions": f"SELECT * FROM {SCHEMA}.governance_actions_current WHERE assessment_id = ? AND ($version IS NULL OR opened_snapshot_id IN (SELECT snapshot_id FROM {SCHEMA}.register_snapshots WHERE model_version = $version)) ORDER BY opened_at",
    "governance_action_events": f"""SELECT ev.* FROM {SCHEMA}.governance_action_events ev JOIN {SCHEMA}.governance_actions a USING (action_id)
        WHERE a.assessment_id = ? AND ($version IS NULL OR a.opened_snapshot_id IN (SELECT snapshot_id FROM {SCHEMA}.register_snapshots WHERE model_version = $version))
        ORDER BY ev.event_at""",
    "release_decisions": f"SELECT * FROM {SCHEMA}.release_decisions WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY decided_at",
    "group_metrics": f"SELECT * FROM {SCHEMA}.group_metrics WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY partition_key, feature_set, group_key, metric",
    "disparities": f"SELECT * FROM {SCHEMA}.disparities WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY partition_key, feature_set, metric",
    "quality_results": f"""SELECT q.* FROM {SCHEMA}.quality_results q WHERE q.assessment_id = ? AND ($version IS NULL OR q.run_id IN
        (SELECT run_id FROM {SCHEMA}.runs WHERE model_version = $version)) ORDER BY partition_key, table_name, check_name""",
}


def _rows(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def export_audit(
    conn: duckdb.DuckDBPyConnection,
    assessment_id: str,
    out_dir: Path,
    *,
    model_version: str | None = None,
) -> list[Path]:
    """Write ``audit.json`` (all tables, with framework tags) and one CSV per table into a new folder.

    Returns:
        The files written.
    """
    label = (
        f"{assessment_id}_v{model_version}" if model_version else f"{assessment_id}_all_versions"
    )
    folder = Path(out_dir) / f"{label}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    folder.mkdir(parents=True, exist_ok=False)
    document: dict[str, object] = {
        "assessment_id": assessment_id,
        "model_version": model_version,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    written = []
    for name, query in AUDIT_TABLES.items():
        params = {"version": model_version}
        sql = query.replace("?", "$assessment")
        frame = conn.execute(sql, {**params, "assessment": assessment_id}).df()
        document[name] = _rows(frame)
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    tags = sorted(
        {tag for row in document["register_entries"] for tag in (row.get("frameworks") or [])}
    )  # type: ignore[union-attr]
    document["framework_tags"] = tags
    path = folder / "audit.json"
    path.write_text(
        json.dumps(document, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return [path, *written]
