"""The impact report of one partition: Markdown and a self-contained HTML file, plots embedded.

Sections follow what a reviewer (and the people affected) need, in that order: what the model is for
and where it falls short; the register and what changed; open governance actions; the release decision
and impact level; outcomes by group with confidence intervals; disparities against their thresholds;
drift; KPIs and cost-benefit by group; scenarios; causal estimates; versions and lineage.

Every plot is a PNG embedded as a ``data:`` URI, so the HTML file opens anywhere without a network, and
groups are told apart by marker shape and position as well as colour.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from impact_assets.assessment import Assessment
from impact_assets.storage import SCHEMA

__all__ = ["Report", "build_report"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Report:
    markdown: str
    html: str
    markdown_path: Path
    html_path: Path
    sections: tuple[str, ...]
    plots: int


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_"
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _plot_rates(metrics: pd.DataFrame, metric: str) -> str | None:
    """Selection rate (or another metric) per group with its interval, one panel per feature set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics[(metrics["metric"] == metric) & (metrics["feature_set"] != "overall")]
    if rows.empty:
        return None
    sets = list(dict.fromkeys(rows["feature_set"]))
    fig, axes = plt.subplots(len(sets), 1, figsize=(7, 1.2 + 0.45 * len(rows)), squeeze=False)
    overall = metrics[(metrics["metric"] == metric) & (metrics["feature_set"] == "overall")][
        "value"
    ]
    for ax, name in zip(axes[:, 0], sets, strict=True):
        group = rows[rows["feature_set"] == name].reset_index(drop=True)
        for i, r in group.iterrows():
            y = len(group) - 1 - i
            if r["value"] != r["value"] or r["value"] is None:
                ax.text(0.01, y, f"{r['group_key']}: suppressed", va="center", fontsize=8)
                continue
            low = r["value"] - r["ci_low"] if r["ci_low"] == r["ci_low"] else 0
            high = r["ci_high"] - r["value"] if r["ci_high"] == r["ci_high"] else 0
            ax.errorbar(
                r["value"],
                y,
                xerr=[[low], [high]],
                fmt=MARKERS[i % len(MARKERS)],
                color="black",
                capsize=3,
            )
        ax.set_yticks(
            range(len(group)),
            [
                f"{g} (n={int(n)})"
                for g, n in zip(group["group_key"][::-1], group["n"][::-1], strict=True)
            ],
        )
        if not overall.empty:
            ax.axvline(float(overall.iloc[0]), linestyle="--", color="grey", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_title(
            f"{metric.replace('_', ' ')} by {name} (dashed: overall; bars: 95 % interval)",
            fontsize=9,
        )
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _latest(
    conn: duckdb.DuckDBPyConnection, table: str, assessment: Assessment, partition: str
) -> pd.DataFrame:
    return conn.execute(
        f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ?
            QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
        [assessment.id, partition],
    ).df()


def build_report(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, out_dir: Path
) -> Report:
    """Write ``report.md`` and ``report.html`` for the partition's newest snapshot under ``out_dir``."""
    spec = assessment.spec
    snapshot = conn.execute(
        f"SELECT * FROM {SCHEMA}.register_snapshots WHERE assessment_id = ? AND partition_key = ? "
        "ORDER BY snapshot_version DESC LIMIT 1",
        [assessment.id, partition_key],
    ).df()
    if snapshot.empty:
        raise ValueError(
            f"no register snapshot of {assessment.id} for {partition_key}; assess it first"
        )
    snap = snapshot.iloc[0]
    entries = conn.execute(
        f"SELECT entry_id, status, value, ci_low, ci_high, n, threshold_warn, threshold_breach, direction, reason "
        f"FROM {SCHEMA}.register_entries WHERE snapshot_id = ? ORDER BY entry_id",
        [snap["snapshot_id"]],
    ).df()
    changes = conn.execute(
        f"SELECT entry_id, previous_status, status, previous_value, value, value_delta FROM {SCHEMA}.register_changes "
        "WHERE snapshot_id = ? AND (previous_status IS DISTINCT FROM status OR abs(value_delta) > 0) ORDER BY entry_id",
        [snap["snapshot_id"]],
    ).df()
    actions = conn.execute(
        f"SELECT entry_id, action_type, owner, CAST(opened_at AS DATE) AS opened, CAST(due_at AS DATE) AS due, breach_count, overdue "
        f"FROM {SCHEMA}.governance_actions_current WHERE assessment_id = ? AND status = 'open' ORDER BY due_at",
        [assessment.id],
    ).df()
    decision = conn.execute(
        f"SELECT decision, model_version, rollback_to, reasons FROM {SCHEMA}.release_decisions "
        "WHERE assessment_id = ? AND partition_key = ? ORDER BY decided_at DESC LIMIT 1",
        [assessment.id, partition_key],
    ).df()
    metrics = _latest(conn, "group_metrics", assessment, partition_key)
    gaps = _latest(conn, "disparities", assessment, partition_key)
    kpis = _latest(conn, "kpis", assessment, partition_key)
    drift = _latest(conn, "drift", assessment, partition_key)
    scenarios = _latest(conn, "scenarios", assessment, partition_key)
    causal = _latest(conn, "causal_estimates", assessment, partition_key)

    sections: list[tuple[str, str]] = []
    plots: dict[str, str] = {}
    sections.append(
        (
            "What the model is for",
            f"{spec.intended_use.strip()}\n\n**Where it falls short**\n\n"
            + "\n".join(f"- {item}" for item in spec.limitations)
            + "\n\n**Who is affected**\n\n"
            + "\n".join(f"- **{s.id}**: {s.description}" for s in spec.stakeholders),
        )
    )
    counts = entries["status"].value_counts().to_dict()
    sections.append(
        (
            "Impact register",
            "Status: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + "\n\n"
            + _table(
                entries.rename(columns={"threshold_warn": "warn", "threshold_breach": "breach"})
            )
            + "\n\n**Changed since the previous snapshot**\n\n"
            + _table(changes),
        )
    )
    sections.append(("Open governance actions", _table(actions)))
    if decision.empty:
        verdict = "No release decision for this partition yet."
    else:
        d = decision.iloc[0]
        verdict = (
            f"**{d['decision']}** for model version {d['model_version']}"
            + (f" (roll back to {d['rollback_to']})" if d["rollback_to"] else "")
            + "\n\n"
            + "\n".join(f"- {r}" for r in d["reasons"])
        )
    sections.append(
        (
            "Release decision and impact level",
            verdict
            + f"\n\nImpact level **{snap['impact_level']}** (score {_fmt(snap['impact_score'])}; raw "
            f"{_fmt(snap['raw_impact_score'])}, mitigation {_fmt(snap['mitigation_score'])}).",
        )
    )
    picture = _plot_rates(metrics, "selection_rate") if not metrics.empty else None
    if picture:
        plots["selection_rate"] = picture
    shown = metrics[
        metrics["metric"].isin(
            ["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"]
        )
    ]
    sections.append(
        (
            "Outcomes by group",
            (
                "![selection rate by group](data:image/png;base64," + picture + ")\n\n"
                if picture
                else ""
            )
            + _table(
                shown[
                    [
                        "feature_set",
                        "group_key",
                        "metric",
                        "value",
                        "ci_low",
                        "ci_high",
                        "n",
                        "reason",
                    ]
                ]
            ),
        )
    )
    thresholds = []
    for e in spec.register_entries:
        ref = e.measure
        if ref.source == "disparity":
            row = gaps[
                (gaps["feature_set"] == ref.feature_set)
                & (gaps["metric"] == ref.metric)
                & (gaps["method"] == ref.method)
                & (gaps["relative_to"] == ref.relative_to)
            ]
            value = row["value"].iloc[0] if not row.empty else None
            thresholds.append(
                {
                    "entry": e.id,
                    "disparity": f"{ref.metric} {ref.method} ({ref.feature_set}, {ref.relative_to})",
                    "value": value,
                    "warn": e.thresholds.warn,
                    "breach": e.thresholds.breach,
                    "direction": e.thresholds.direction,
                }
            )
    sections.append(("Disparities against their thresholds", _table(pd.DataFrame(thresholds))))
    sections.append(
        (
            "Drift",
            _table(
                drift[drift["statistic"].isin(["psi", "ks", "chi_square_pvalue", "js_distance"])][
                    ["column_name", "role", "statistic", "value", "n", "n_reference", "reason"]
                ]
            )
            if not drift.empty
            else "_not computed_",
        )
    )
    sections.append(
        (
            "KPIs and cost-benefit by group",
            _table(kpis[["kpi", "feature_set", "group_key", "value", "n", "reason"]])
            if not kpis.empty
            else "_none declared_",
        )
    )
    sections.append(
        (
            "Scenarios",
            _table(
                scenarios[
                    (scenarios["group_key"] == "overall")
                    & scenarios["metric"].isin(
                        ["selection_rate", "net_benefit_per_decision", "demographic_parity_ratio"]
                    )
                ][["scenario", "variant", "metric", "feature_set", "value", "baseline"]]
            )
            if not scenarios.empty
            else "_none declared_",
        )
    )
    sections.append(
        (
            "Causal estimates",
            _table(
                causal[
                    [
                        "name",
                        "estimate",
                        "ci_low",
                        "ci_high",
                        "pre_trend_p",
                        "days_pre",
                        "days_post",
                        "reason",
                    ]
                ]
            )
            if not causal.empty
            else "_none declared_",
        )
    )
    sources = ", ".join(f"`{s}` ({src.path})" for s, src in spec.sources.items())
    models = " → ".join(f"`{m}`" for m in assessment.sql.order)
    sections.append(
        (
            "Versions and lineage",
            f"Model version **{snap['model_version']}**, data version `{snap['data_version']}`, snapshot "
            f"`{snap['snapshot_id']}` (version {snap['snapshot_version']}) of run `{snap['run_id']}`.\n\n"
            f"Sources: {sources}. SQL models: {models}. Results in `{assessment.paths.database}` (schema `impact`); "
            f"OpenLineage events under `{assessment.paths.state_dir / 'lineage'}` or the configured backend.",
        )
    )
    title = f"Impact report — {spec.title} — {partition_key}"
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = (
        f"# {title}\n\n_Generated {generated}._\n\n"
        + "\n\n".join(f"## {name}\n\n{body}" for name, body in sections)
        + "\n"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(_html(title, generated, sections), encoding="utf-8")
    (out_dir / "report.json").write_text(
        json.dumps(
            {
                "partition": partition_key,
                "snapshot_id": snap["snapshot_id"],
                "sections": [s for s, _ in sections],
            }
        ),
        encoding="utf-8",
    )
    return Report(
        markdown,
        html_path.read_text(encoding="utf-8"),
        md_path,
        html_path,
        tuple(s for s, _ in sections),
        len(plots),
    )


def _html(title: str, generated: str, sections: list[tuple[str, str]]) -> str:
    """A self-contained page: the Markdown subset the report uses (tables, lists, bold, images)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}"
        "table{border-collapse:collapse;margin:.5em 0;font-size:.85em}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}"
        "th{background:#eee}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p><em>Generated {html.escape(generated)}.</em></p>",
    ]
    for name, body in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(_block_html(body))
    parts.append("</body></html>")
    return "\n".join(parts)


def _inline(text: str) -> str:
    escaped = html.escape(text.replace("\\|", "|"))
    while "**" in escaped:
        escaped = escaped.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
    return escaped


def _block_html(body: str) -> str:
    out, rows, items = [], [], []

    def flush() -> None:
        if rows:
            head, *rest = rows
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>")
            out.extend(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest
            )
            out.append("</table>")
            rows.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in body.splitlines():
        if line.startswith("|"):
            if set(line.replace("|", "")) <= {"-"}:
                continue
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows.append(cells)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("![") and "](data:image/png;base64," in line:
            alt = line[2 : line.index("]")]
            src = line[line.index("(") + 1 : -1]
            out.append(f"<img alt='{html.escape(alt)}' src='{src}'>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)
