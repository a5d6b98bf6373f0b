"""The audit export and post-market monitoring record: everything the register knows about a model
version (register history, breaches, governance actions and the human decisions on them with their
rationale, sign-offs, releases and rollbacks, notices), as JSON, CSV and one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import html
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
    "release_state": f"SELECT * FROM {SCHEMA}.release_state WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY decided_at",
    "release_sign_offs": f"SELECT * FROM {SCHEMA}.release_sign_offs WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY signed_at",
    "breaches": f"""SELECT s.partition_key, s.snapshot_version, s.model_version, e.entry_id, e.value, e.threshold_breach, e.owner, e.action, e.reason
        FROM {SCHEMA}.register_entries e JOIN {SCHEMA}.register_snapshots s USING (snapshot_id)
        WHERE s.assessment_id = ? AND e.status = 'breach' AND ($version IS NULL OR s.model_version = $version)
        ORDER BY s.partition_key, s.snapshot_version, e.entry_id""",
    "human_decisions": f"""SELECT ev.event_at, a.entry_id, ev.event AS decision, ev.actor AS by, ev.os_user, ev.rationale, ev.assignee,
               ev.approver, ev.expires_at, ev.action_id
        FROM {SCHEMA}.governance_action_events ev JOIN {SCHEMA}.governance_actions a USING (action_id)
        WHERE a.assessment_id = ? AND ev.actor <> 'system'
          AND ($version IS NULL OR a.opened_snapshot_id IN (SELECT snapshot_id FROM {SCHEMA}.register_snapshots WHERE model_version = $version))
        ORDER BY ev.event_seq""",
    "notices": f"""SELECT n.notice_id, n.kind, n.subject, n.created_at, n.partition_key, n.entry_id, n.model_version,
               (SELECT string_agg(d.channel || ': ' || d.outcome, ', ' ORDER BY d.attempted_at) FROM {SCHEMA}.notice_deliveries d
                WHERE d.notice_id = n.notice_id AND d.outcome <> 'failed') AS delivered
        FROM {SCHEMA}.notices n WHERE n.assessment_id = ? AND ($version IS NULL OR n.model_version = $version OR n.model_version IS NULL)
        ORDER BY n.created_at""",
    "group_metrics": f"SELECT * FROM {SCHEMA}.group_metrics WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY partition_key, feature_set, group_key, metric",
    "disparities": f"SELECT * FROM {SCHEMA}.disparities WHERE assessment_id = ? AND ($version IS NULL OR model_version = $version) ORDER BY partition_key, feature_set, metric",
    "quality_results": f"""SELECT q.* FROM {SCHEMA}.quality_results q WHERE q.assessment_id = ? AND ($version IS NULL OR q.run_id IN
        (SELECT run_id FROM {SCHEMA}.runs WHERE model_version = $version)) ORDER BY partition_key, table_name, check_name""",
}


#: Sections of the monitoring record's HTML page: title, table, columns shown (None: all).
RECORD_SECTIONS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    (
        "Release state per model version",
        "release_state",
        (
            "model_version",
            "state",
            "state_since",
            "recommendation",
            "partition_key",
            "sign_offs_required",
            "signatures",
            "signers",
            "reasons",
        ),
    ),
    (
        "Sign-offs",
        "release_sign_offs",
        ("signed_at", "model_version", "signer", "role", "os_user", "rationale", "via"),
    ),
    (
        "Releases and rollbacks",
        "release_decisions",
        ("decided_at", "model_version", "decision", "partition_key", "rollback_to", "reasons"),
    ),
    ("Breaches", "breaches", None),
    (
        "Governance actions",
        "governance_actions",
        (
            "entry_id",
            "action_type",
            "status",
            "owner",
            "opened_at",
            "due_at",
            "breach_count",
            "acknowledged_by",
            "waived_by",
            "waiver_approver",
            "waiver_expires_at",
            "escalated_to",
            "resolved_by",
            "resolved_at",
        ),
    ),
    ("Human decisions, with their rationale", "human_decisions", None),
    ("Notices", "notices", ("created_at", "kind", "subject", "delivered")),
    (
        "Register history",
        "register_entries",
        (
            "partition_key",
            "snapshot_version",
            "model_version",
            "entry_id",
            "value",
            "ci_low",
            "ci_high",
            "status",
            "reason",
        ),
    ),
)

_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #999}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#e8e8e8}p.none{color:#444;font-style:italic}"""


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def monitoring_record_html(document: dict) -> str:
    """The monitoring record as one self-contained HTML page (no scripts, no external files)."""
    title = f"Post-market monitoring record: {document['assessment_id']}" + (
        f", model version {document['model_version']}"
        if document["model_version"]
        else ", all model versions"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Exported {html.escape(str(document['exported_at']))}. Framework tags: {html.escape(', '.join(document['framework_tags']) or 'none')}.</p>",  # type: ignore[arg-type]
    ]
    for heading, table, columns in RECORD_SECTIONS:
        rows: list[dict] = document[table]  # type: ignore[assignment]
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if not rows:
            parts.append('<p class="none">None recorded.</p>')
            continue
        shown = list(columns or rows[0].keys())
        parts.append("<table><thead><tr>")
        parts += [f'<th scope="col">{html.escape(c.replace("_", " "))}</th>' for c in shown]
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append(
                "<tr>"
                + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in shown)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _rows(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def export_audit(
    conn: duckdb.DuckDBPyConnection,
    assessment_id: str,
    out_dir: Path,
    *,
    model_version: str | None = None,
) -> list[Path]:
    """Write ``audit.json`` (all tables, with framework tags), one CSV per table and the monitoring
    record's page ``monitoring_record.html`` into a new folder.

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
    page = folder / "monitoring_record.html"
    page.write_text(monitoring_record_html(document), encoding="utf-8")
    return [path, page, *written]
