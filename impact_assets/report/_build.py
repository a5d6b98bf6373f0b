"""The impact report of one partition: Markdown and a self-contained HTML file, plots embedded.

Sections follow what a reviewer (and the people affected) need, in that order: what the model is for
and where it falls short; the register and what changed; open governance actions; the release decision
and impact level; outcomes by group with confidence intervals; disparities against their thresholds;
drift; KPIs and cost-benefit by group; scenarios; causal estimates; versions and lineage.

Every plot is a PNG embedded as a ``data:`` URI, so the HTML file opens anywhere without a network;
plots are black and grey, and groups are told apart by marker shape, position and direct labels, never
by colour alone. The HTML is the Markdown rendered by markdown-it-py (raw HTML in values is escaped).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from markdown_it import MarkdownIt

from impact_assets._markdown import markdown_cell, markdown_table
from impact_assets.assessment import Assessment
from impact_assets.storage import SCHEMA

__all__ = ["Report", "build_report"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DPI = 80
PNG_URI = "data:image/png;base64,"


@dataclass(frozen=True)
class Report:
    markdown: str
    markdown_path: Path
    html_path: Path
    plots: int


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_"
    return markdown_table(list(frame.columns), frame.itertuples(index=False))


def _png(draw: Callable[[Any], None], height: float, width: float = 7.0) -> str:
    """Run ``draw(plt)`` on a new figure and return it as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Laid out and drawn at the PNG's resolution, so both passes share one renderer (and its text
    # metrics); with no layout engine left on the figure, saving does not lay it out a third time.
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    try:
        draw(fig)
        fig.tight_layout()
        fig.set_layout_engine(None)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi="figure")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _missing(value: object) -> bool:
    return value is None or value != value


def _forest(ax: Any, rows: pd.DataFrame, label: str) -> None:
    """Estimates with their intervals, one row each, top to bottom, a marker shape per row."""
    for i, r in enumerate(rows.itertuples(index=False)):
        y = len(rows) - 1 - i
        if _missing(r.value):
            ax.text(
                0.02, y, "no value", va="center", fontsize=8, transform=ax.get_yaxis_transform()
            )
            continue
        # a percentile bootstrap interval need not hold the estimate: draw what lies beyond it
        low = max(r.value - r.ci_low, 0.0) if not _missing(r.ci_low) else 0.0
        high = max(r.ci_high - r.value, 0.0) if not _missing(r.ci_high) else 0.0
        ax.errorbar(
            r.value,
            y,
            xerr=[[low], [high]],
            fmt=MARKERS[i % len(MARKERS)],
            color="black",
            capsize=3,
        )
    ax.set_yticks(range(len(rows)), list(rows[label])[::-1])
    ax.tick_params(labelsize=8)


def _plot_rates(metrics: pd.DataFrame, metric: str) -> str | None:
    """A metric per group with its interval, one panel per feature set, the overall rate dashed."""
    rows = metrics[(metrics["metric"] == metric) & (metrics["feature_set"] != "overall")]
    if rows.empty:
        return None
    sets = list(dict.fromkeys(rows["feature_set"]))
    overall = metrics[(metrics["metric"] == metric) & (metrics["feature_set"] == "overall")]

    def draw(fig: Any) -> None:
        sizes = [int((rows["feature_set"] == name).sum()) + 1 for name in sets]
        axes = fig.subplots(len(sets), 1, squeeze=False, height_ratios=sizes)[:, 0]
        for ax, name in zip(axes, sets, strict=True):
            group = rows[rows["feature_set"] == name].assign(
                label=lambda f: [
                    f"{g} (n={int(n)})" + (" suppressed" if _missing(v) else "")
                    for g, n, v in zip(f["group_key"], f["n"], f["value"], strict=True)
                ]
            )
            _forest(ax, group, "label")
            if not overall.empty:
                ax.axvline(float(overall["value"].iloc[0]), linestyle="--", color="grey", lw=1)
            ax.set_xlim(0, 1)
            ax.set_title(
                f"{metric.replace('_', ' ')} by {name} (dashed: overall; bars: interval)",
                fontsize=9,
            )

    return _png(draw, 1.2 + 0.45 * len(rows))


def _plot_thresholds(rows: pd.DataFrame) -> str | None:
    """Register entries with their interval beside their warn (|) and breach (x) thresholds."""
    if rows.empty:
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        _forest(ax, rows, "entry_id")
        for i, r in enumerate(rows.itertuples(index=False)):
            y = len(rows) - 1 - i
            if not _missing(r.threshold_warn):
                ax.plot(r.threshold_warn, y, marker="|", markersize=14, color="grey")
            ax.plot(r.threshold_breach, y, marker="x", markersize=9, color="grey")
            ax.annotate(
                r.status,
                (1.0, y),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                va="center",
                xytext=(4, 0),
                textcoords="offset points",
            )
        ax.set_title("value and interval; | warn threshold, x breach threshold", fontsize=9)

    return _png(draw, 1.0 + 0.4 * len(rows))


def _plot_bars(
    rows: pd.DataFrame, label: str, title: str, lines: tuple[float, ...] = ()
) -> str | None:
    """Horizontal bars with their values written at the end; dotted reference lines."""
    rows = rows[~rows["value"].isna()]
    if rows.empty:
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        y = list(range(len(rows)))[::-1]
        ax.barh(y, rows["value"], color="lightgrey", edgecolor="black", hatch="//")
        for yy, v in zip(y, rows["value"], strict=True):
            ax.annotate(
                f"{v:.3g}",
                (v, yy),
                fontsize=8,
                va="center",
                ha="left" if v >= 0 else "right",
                xytext=(3 if v >= 0 else -3, 0),
                textcoords="offset points",
            )
        ax.margins(x=0.15)
        for x in lines:
            ax.axvline(x, linestyle=":", color="black", lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, list(rows[label]))
        ax.tick_params(labelsize=8)
        ax.set_title(title, fontsize=9)

    return _png(draw, 1.0 + 0.3 * len(rows))


def _plot_sweep(sweep: pd.DataFrame, feature_set: str) -> str | None:
    """Selection rate and net benefit per decision against the threshold, a marker per group."""
    rows = sweep[sweep["feature_set"].isin(["overall", feature_set])].copy()
    metrics = [
        m for m in ("selection_rate", "net_benefit_per_decision") if m in set(rows["metric"])
    ]
    if rows.empty or not metrics:
        return None
    rows["threshold"] = pd.to_numeric(rows["variant"], errors="coerce")

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            part = rows[rows["metric"] == metric]
            for i, (group, line) in enumerate(part.groupby("group_key", sort=True)):
                line = line.sort_values("threshold")
                ax.plot(
                    line["threshold"],
                    line["value"],
                    marker=MARKERS[i % len(MARKERS)],
                    color="black",
                    linestyle="-" if group == "overall" else ":",
                    label=group,
                )
            ax.set_xlabel("decision threshold", fontsize=8)
            ax.set_title(metric.replace("_", " "), fontsize=9)
            ax.tick_params(labelsize=8)
        axes[-1].legend(
            fontsize=7,
            title=feature_set,
            title_fontsize=7,
            loc="center left",
            bbox_to_anchor=(1, 0.5),
        )

    return _png(draw, 3.2, width=9.0)


RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def _rate_columns(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per group: each rate with its interval, e.g. ``0.78 [0.76, 0.81]``."""
    rows = metrics[metrics["metric"].isin(RATES)].assign(
        shown=lambda f: [
            "—" if _missing(v) else f"{v:.3f}" + ("" if _missing(lo) else f" [{lo:.3f}, {hi:.3f}]")
            for v, lo, hi in zip(f["value"], f["ci_low"], f["ci_high"], strict=True)
        ]
    )
    keys = ["feature_set", "group_key"]
    wide = rows.pivot_table(
        index=keys, columns="metric", values="shown", aggfunc="first", sort=False
    )
    info = rows.groupby(keys, sort=False).agg(n=("n", "max"), reason=("reason", "first"))
    return (
        info[["n"]].join(wide[[m for m in RATES if m in wide]]).join(info[["reason"]]).reset_index()
    )


def _drift_columns(drift: pd.DataFrame) -> pd.DataFrame:
    """One row per column with its statistics side by side."""
    keys = ["column_name", "role", "n", "n_reference"]
    wide = drift.pivot_table(
        index=keys, columns="statistic", values="value", aggfunc="first", sort=False
    )
    shown = [c for c in ("psi", "ks", "ks_pvalue", "chi_square_pvalue", "js_distance") if c in wide]
    reasons = drift.groupby(keys, sort=False)["reason"].first()
    return wide[shown].join(reasons).reset_index()


def _kpi_columns(kpis: pd.DataFrame) -> pd.DataFrame:
    """One row per group, one column per KPI (suppressed values stay empty, with the reason)."""
    wide = kpis.pivot_table(
        index=["feature_set", "group_key"],
        columns="kpi",
        values="value",
        aggfunc="first",
        sort=False,
    )
    info = kpis.groupby(["feature_set", "group_key"], sort=False).agg(
        n=("n", "max"), reason=("reason", "first")
    )
    return info[["n"]].join(wide).join(info[["reason"]]).reset_index()


def _plot_effects(causal: pd.DataFrame) -> str | None:
    """Each causal estimate with its interval against no effect (also those that failed a check)."""
    if causal["estimate"].isna().all():
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        _forest(ax, causal.assign(value=causal["estimate"]), "name")
        ax.axvline(0, linestyle="--", color="grey", lw=1)
        ax.set_title("estimated effect and interval (dashed: no effect)", fontsize=9)

    return _png(draw, 1.0 + 0.4 * len(causal))


def _latest(
    conn: duckdb.DuckDBPyConnection, table: str, assessment: Assessment, partition: str
) -> pd.DataFrame:
    return conn.execute(
        f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ?
            QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
        [assessment.id, partition],
    ).df()


def build_report(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition_key: str, reports_dir: Path
) -> Report:
    """Write ``report.md`` and ``report.html`` for the partition's newest snapshot.

    They go to ``reports_dir/<assessment>/<partition>/model-<version>/``: one report per partition and
    model version, so a re-assessment with a new version keeps the previous version's report.
    """
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
    plots: list[str] = []

    def picture(alt: str, png: str | None) -> str:
        if png is None:
            return ""
        plots.append(png)
        return f"![{alt}]({PNG_URI}{png})\n\n"

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
            + f"\n\nImpact level **{snap['impact_level']}** (score {markdown_cell(snap['impact_score'])}; raw "
            f"{markdown_cell(snap['raw_impact_score'])}, mitigation {markdown_cell(snap['mitigation_score'])}).",
        )
    )
    sections.append(
        (
            "Outcomes by group",
            (
                picture("selection rate by group", _plot_rates(metrics, "selection_rate"))
                + picture("true positive rate by group", _plot_rates(metrics, "true_positive_rate"))
                if not metrics.empty
                else ""
            )
            + _table(_rate_columns(metrics)),
        )
    )
    measured = {
        e.id: f"{e.measure.metric} {e.measure.method} by {e.measure.feature_set} ({e.measure.relative_to})"
        for e in spec.register_entries
        if e.measure.source == "disparity"
    }
    gap_entries = entries[entries["entry_id"].isin(measured)].assign(
        disparity=lambda f: f["entry_id"].map(measured)
    )
    sections.append(
        (
            "Disparities against their thresholds",
            picture("disparities against their thresholds", _plot_thresholds(gap_entries))
            + _table(
                gap_entries.rename(
                    columns={"threshold_warn": "warn", "threshold_breach": "breach"}
                )[
                    [
                        "entry_id",
                        "disparity",
                        "value",
                        "ci_low",
                        "ci_high",
                        "warn",
                        "breach",
                        "status",
                    ]
                ]
            )
            + f"\n\nEvery disparity of every metric: table `impact.disparities` ({len(gaps)} rows here).",
        )
    )
    psi = drift[drift["statistic"] == "psi"]
    sections.append(
        (
            "Drift",
            picture(
                "population stability index per column",
                _plot_bars(
                    psi,
                    "column_name",
                    "PSI against the reference (dotted: 0.1 and 0.25)",
                    (0.1, 0.25),
                ),
            )
            + _table(_drift_columns(drift))
            if not drift.empty
            else "_not computed_",
        )
    )
    per_decision = kpis[
        (kpis["kpi"] == "net_benefit_per_decision") & (kpis["kind"] == "cost_benefit")
    ].assign(label=lambda f: f["feature_set"] + ": " + f["group_key"])
    sections.append(
        (
            "KPIs and cost-benefit by group",
            picture(
                "net benefit per decision by group",
                _plot_bars(per_decision, "label", "net benefit per decision by group"),
            )
            + _table(_kpi_columns(kpis))
            if not kpis.empty
            else "_none declared_",
        )
    )
    sweeps = scenarios[scenarios["kind"] == "threshold_sweep"] if not scenarios.empty else scenarios
    first_set = next((f for f in sweeps.get("feature_set", []) if f != "overall"), "overall")
    sections.append(
        (
            "Scenarios",
            picture("threshold sweep", _plot_sweep(sweeps, first_set))
            + _table(
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
            picture("causal estimates with their intervals", _plot_effects(causal))
            + _table(
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
    title = (
        f"Impact report — {spec.title} — {partition_key} — model version {snap['model_version']}"
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = (
        f"# {title}\n\n_Generated {generated}._\n\n"
        + "\n\n".join(f"## {name}\n\n{body}" for name, body in sections)
        + "\n"
    )
    out_dir = reports_dir / assessment.id / partition_key / f"model-{snap['model_version']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(_html(title, markdown, plots), encoding="utf-8")
    return Report(markdown, md_path, html_path, len(plots))


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.85em}"
    "td,th{border:1px solid #999;padding:.2em .5em;text-align:left}th{background:#eee}img{max-width:100%}"
)


def _html(title: str, markdown: str, plots: list[str]) -> str:
    """A self-contained page: the report's Markdown (GFM tables; raw HTML escaped), its style inline.

    The parser is given a short reference for each plot, and the rendered ``src`` gets the PNG back:
    scanning the base64 text made up most of the parser's time.
    """
    token = secrets.token_hex(8)
    for i, png in enumerate(plots):
        markdown = markdown.replace(f"({PNG_URI}{png})", f"(#{token}-{i})", 1)
    body = MarkdownIt("js-default").render(markdown)
    for i, png in enumerate(plots):
        body = body.replace(f'src="#{token}-{i}"', f'src="{PNG_URI}{png}"', 1)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n"
    )
