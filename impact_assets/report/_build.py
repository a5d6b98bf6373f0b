"""The impact report of one partition: Markdown and a self-contained HTML file, plots embedded.

Sections follow what a reviewer (and the people affected) need, in that order: the answer first (the
version in service and its state, breaches and warnings by severity, what changed, actions overdue and
due soon); what the model is for and where it falls short; the register by severity with each entry's
trend, model versions side by side, and what changed; governance actions not yet resolved; the release
recommendation, sign-offs and impact level; outcomes by group with confidence intervals; disparities against their thresholds;
drift; KPIs and cost-benefit by group; scenarios; causal estimates; versions and lineage.

Every plot is a PNG embedded as a ``data:`` URI, so the HTML file opens anywhere without a network;
plots are black and grey, and groups are told apart by marker shape, position and direct labels, never
by colour alone. The HTML is the Markdown rendered by markdown-it-py (raw HTML in values is escaped).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from impact_assets._markdown import markdown_cell, markdown_table, with_interval
from impact_assets.assessment import Assessment
from impact_assets.outcomes import cohort_of
from impact_assets.oversight import release_state, serving_version
from impact_assets.register import STATUSES, by_severity
from impact_assets.report._html import PNG_URI, render_html
from impact_assets.report._plots import (
    missing,
    plot_bars,
    plot_effects,
    plot_rates,
    plot_sweep,
    plot_thresholds,
)
from impact_assets.spec import ACTION_TYPES, OVERALL
from impact_assets.storage import SCHEMA


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


RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def _rate_columns(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per group: each rate with its interval, e.g. ``0.78 [0.76, 0.81]``."""
    rows = metrics[metrics["metric"].isin(RATES)].assign(
        shown=lambda f: [
            with_interval(v, lo, hi)
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


def _kpi_columns(kpis: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """One row per group, one column per KPI (suppressed values stay empty, with the reason);
    with a ``unit``, every column is money and named with it."""
    if kpis.empty:
        return kpis
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
    if unit is not None:
        wide = wide.rename(columns=lambda c: f"{c} ({unit})")
    return info[["n"]].join(wide).join(info[["reason"]]).reset_index()


def _latest(
    conn: duckdb.DuckDBPyConnection, table: str, assessment: Assessment, partition: str
) -> pd.DataFrame:
    return conn.execute(
        f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND partition_key = ?
            QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
        [assessment.id, partition],
    ).df()


#: Overall rates shown estimated beside realised.
COMPARED = ("true_positive_rate", "false_positive_rate", "precision", "accuracy", "base_rate")


def _cohort_results(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition: str
) -> dict[str, pd.DataFrame] | None:
    """The partition's cohort: its newest realised metrics and coverage, and the newest estimate
    ever made of it (``None`` without late outcomes)."""
    outcomes = assessment.spec.outcomes
    if outcomes is None:
        return None
    cohort = cohort_of(dt.date.fromisoformat(partition), outcomes.cohort).key
    params = [assessment.id, cohort]

    def newest(table: str, basis: str | None = None) -> pd.DataFrame:
        which = "" if basis is None else f"AND basis = '{basis}'"
        return conn.execute(
            f"""SELECT * FROM {SCHEMA}.{table} WHERE assessment_id = ? AND cohort_key = ? {which}
                QUALIFY run_id = first(run_id ORDER BY computed_at DESC) OVER ()""",
            params,
        ).df()

    return {
        "cohort": pd.DataFrame({"cohort": [cohort]}),
        "realised": newest("outcome_group_metrics", "realised"),
        "estimated": newest("outcome_group_metrics", "estimated"),
        "coverage": newest("label_coverage"),
    }


def _outcomes_section(awaited: dict[str, pd.DataFrame]) -> str:
    realised, estimated, coverage = awaited["realised"], awaited["estimated"], awaited["coverage"]
    cohort = awaited["cohort"]["cohort"].iloc[0]
    if realised.empty and estimated.empty:
        return f"No outcome-based results for cohort {cohort} yet."
    first = (realised if not realised.empty else estimated).iloc[0]
    state = (
        "matured"
        if bool(first["matured"])
        else f"awaiting outcomes until {first['matures_on']:%Y-%m-%d}"
    )

    def overall(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["feature_set"] == OVERALL) & frame["metric"].isin(COMPARED)].set_index(
            "metric"
        )

    side = (
        pd.DataFrame(
            {
                "realised on the labelled decisions": overall(realised)["value"]
                if not realised.empty
                else None,
                "estimated (CBPE)": overall(estimated)["value"] if not estimated.empty else None,
                "estimate low": overall(estimated)["ci_low"] if not estimated.empty else None,
                "estimate high": overall(estimated)["ci_high"] if not estimated.empty else None,
            },
            index=list(COMPARED),
        )
        .rename_axis("metric")
        .reset_index()
    )
    return (
        f"Cohort **{cohort}**: {state}. Outcome-based rates rest on the decisions whose outcome is "
        "known; the estimate, made before the outcomes arrived, assumes the score stays calibrated "
        "(no concept drift).\n\n"
        + _table(side)
        + "\n\n**Whose outcomes are known** (label coverage by group)\n\n"
        + _table(
            coverage[
                ["feature_set", "group_key", "decisions", "observable", "labelled", "coverage"]
            ]
        )
    )


TREND_DAYS = 7
#: Days ahead within which an action counts as due soon.
DUE_SOON_DAYS = 7


def _thresholds(row) -> str:
    """``warn < 0.9, breach < 0.8``: the side of each threshold that crosses it."""
    side = "<" if row["direction"] == "higher_is_better" else ">"
    parts = (
        []
        if missing(row["threshold_warn"])
        else [f"warn {side} {markdown_cell(row['threshold_warn'])}"]
    )
    return ", ".join([*parts, f"breach {side} {markdown_cell(row['threshold_breach'])}"])


def _register_columns(entries: pd.DataFrame, trend: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entry": entries["entry_id"],
            "status": entries["status"],
            "value [95% interval]": [
                with_interval(v, lo, hi)
                for v, lo, hi in zip(
                    entries["value"], entries["ci_low"], entries["ci_high"], strict=True
                )
            ],
            "n": entries["n"],
            "thresholds": [_thresholds(r) for _, r in entries.iterrows()],
            f"trend ({TREND_DAYS} days)": entries["entry_id"].map(trend).fillna("·"),
            "owner": entries["owner"],
            "action": entries["action"],
            "reason": entries["reason"],
        }
    )


def _trend(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition: str, model_version: str
) -> dict[str, str]:
    """Each entry's value on the last ``TREND_DAYS`` assessed days up to ``partition``, for the
    model version of this report (its newest snapshot of each day)."""
    rows = conn.execute(
        f"""WITH days AS (
                SELECT DISTINCT partition_key FROM {SCHEMA}.register_snapshots
                WHERE assessment_id = ? AND model_version = ? AND partition_key <= ?
                ORDER BY partition_key DESC LIMIT {TREND_DAYS}
            ), newest AS (
                SELECT snapshot_id, partition_key FROM {SCHEMA}.register_snapshots
                WHERE assessment_id = ? AND model_version = ? AND partition_key IN (SELECT partition_key FROM days)
                QUALIFY row_number() OVER (PARTITION BY partition_key ORDER BY snapshot_version DESC) = 1
            )
            SELECT e.entry_id, list(e.value ORDER BY n.partition_key)
            FROM newest n JOIN {SCHEMA}.register_entries e USING (snapshot_id) GROUP BY e.entry_id""",
        [assessment.id, model_version, partition, assessment.id, model_version],
    ).fetchall()
    return {
        entry: " · ".join("·" if missing(v) else markdown_cell(float(v)) for v in values)
        for entry, values in rows
    }


def _versions_side_by_side(
    conn: duckdb.DuckDBPyConnection, assessment: Assessment, partition: str
) -> str:
    """With more than one model version assessed on ``partition``: each entry under each version."""
    frame = conn.execute(
        f"""WITH newest AS (
                SELECT snapshot_id, model_version FROM {SCHEMA}.register_snapshots
                WHERE assessment_id = ? AND partition_key = ?
                QUALIFY row_number() OVER (PARTITION BY model_version ORDER BY snapshot_version DESC) = 1
            )
            SELECT n.model_version, e.entry_id, e.status, e.value, e.ci_low, e.ci_high, e.action
            FROM newest n JOIN {SCHEMA}.register_entries e USING (snapshot_id)""",
        [assessment.id, partition],
    ).df()
    versions = sorted(frame["model_version"].unique(), key=lambda v: (len(v), v))
    if len(versions) < 2:
        return ""
    frame = frame.assign(
        shown=[
            f"{status}: {with_interval(v, lo, hi)}"
            for status, v, lo, hi in zip(
                frame["status"], frame["value"], frame["ci_low"], frame["ci_high"], strict=True
            )
        ]
    )
    wide = frame.pivot_table(
        index="entry_id", columns="model_version", values="shown", aggfunc="first"
    )
    order = by_severity(
        frame.sort_values(
            "model_version", key=lambda c: c.map(versions.index), ascending=False
        ).drop_duplicates("entry_id")[["entry_id", "status", "action"]]
    )["entry_id"]
    table = wide.reindex(order)[versions].rename(columns=lambda v: f"model version {v}")
    return (
        f"\n\n**Model versions side by side on {partition}** (each version's newest snapshot)\n\n"
        + _table(table.rename_axis("entry").reset_index())
    )


def _summary(snap, entries, changes, actions, releases, serving) -> str:
    """The answer first: what serves, what breaks, what changed, what is due."""
    state = {r.model_version: r for r in releases}
    this = str(snap["model_version"])
    lines = []
    if serving is None:
        lines.append("**No model version is approved for service yet.**")
    else:
        r = state.get(serving)
        since = f" since {r.state_since:%Y-%m-%d %H:%M UTC}" if r and r.state_since else ""
        signed = (
            f", signed off by {', '.join(r.signers)} ({r.signatures} of {r.sign_offs_required})"
            if r and r.sign_offs_required
            else ""
        )
        lines.append(f"**Serving: model version {serving}**, approved{since}{signed}.")
    if this != serving:
        r = state.get(this)
        why = f": {r.reasons[0]}" if r and r.reasons else ""
        lines.append(
            f"This report is of model version {this}, "
            + (f"**{r.state.replace('_', ' ')}**{why}." if r else "with no release decision yet.")
        )
    counts = []
    for status in ("breach", "warn"):
        hit = entries[entries["status"] == status]
        if hit.empty:
            counts.append(f"no {status}")
            continue
        per = hit["action"].value_counts()
        kinds = ", ".join(f"{per[a]} {a}" for a in ACTION_TYPES if a in per)
        counts.append(
            f"**{len(hit)} {status}** ({kinds}): " + ", ".join(f"`{e}`" for e in hit["entry_id"])
        )
    rest = entries[~entries["status"].isin(["breach", "warn"])]["status"].value_counts()
    counts.append(", ".join(f"{rest[s]} {s}" for s in STATUSES if s in rest))
    lines.append("Register: " + "; ".join(c for c in counts if c) + ".")
    moved = changes[
        changes["previous_status"].notna() & (changes["previous_status"] != changes["status"])
    ]
    if changes.empty:
        lines.append("Since the previous snapshot: nothing changed.")
    elif moved.empty:
        lines.append(
            f"Since the previous snapshot: no status changed; {len(changes)} values moved."
        )
    else:
        lines.append(
            "Since the previous snapshot: "
            + ", ".join(
                f"`{r.entry_id}` {r.previous_status} → {r.status}" for r in moved.itertuples()
            )
            + "."
        )
    today = dt.datetime.now(dt.UTC).date()
    overdue = actions[actions["overdue"].fillna(False).astype(bool)]
    soon = actions[
        ~actions["overdue"].fillna(False).astype(bool)
        & (pd.to_datetime(actions["due"]).dt.date <= today + dt.timedelta(days=DUE_SOON_DAYS))
    ]

    def named(frame: pd.DataFrame) -> str:
        return ", ".join(
            f"`{r.entry_id}` ({r.owner}"
            + ("" if missing(r.due) else f", due {r.due:%Y-%m-%d}")
            + ")"
            for r in frame.itertuples()
        )

    lines.append(
        f"Actions not yet resolved: {len(actions)}"
        + (
            f"; **overdue {len(overdue)}**: {named(overdue)}"
            if not overdue.empty
            else "; none overdue"
        )
        + (f"; due within {DUE_SOON_DAYS} days: {named(soon)}" if not soon.empty else "")
        + "."
    )
    return "\n\n".join(f"- {line}" for line in lines)


def _shown_path(path: str) -> str:
    """A source's path as the spec gives it, without the machine's folders."""
    for placeholder, where in (
        ("{state_dir}/", "the state folder"),
        ("{project_dir}/", "the project"),
    ):
        if path.startswith(placeholder):
            return f"`{path[len(placeholder) :]}` in {where}"
    return f"`{Path(path).name}`" if Path(path).is_absolute() else f"`{path}`"


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
    entries = by_severity(
        conn.execute(
            f"SELECT entry_id, status, value, ci_low, ci_high, n, threshold_warn, threshold_breach, direction, "
            f"owner, action, reason FROM {SCHEMA}.register_entries WHERE snapshot_id = ?",
            [snap["snapshot_id"]],
        ).df()
    )
    changes = conn.execute(
        f"SELECT entry_id, previous_status, status, previous_value, value, value_delta FROM {SCHEMA}.register_changes "
        "WHERE snapshot_id = ? AND (previous_status IS DISTINCT FROM status OR abs(value_delta) > 0) ORDER BY entry_id",
        [snap["snapshot_id"]],
    ).df()
    actions = conn.execute(
        f"""SELECT entry_id, action_type, status AS state, owner, CAST(opened_at AS DATE) AS opened, CAST(due_at AS DATE) AS due,
                   breach_count, overdue,
                   CASE status WHEN 'acknowledged' THEN acknowledged_by
                               WHEN 'waived' THEN waived_by || ', approved by ' || waiver_approver || ', until ' || strftime(waiver_expires_at - INTERVAL 1 DAY, '%Y-%m-%d')
                   END AS decided_by,
                   escalated_to
            FROM {SCHEMA}.governance_actions_current WHERE assessment_id = ? AND status <> 'resolved' ORDER BY overdue DESC, due_at""",
        [assessment.id],
    ).df()
    releases = release_state(conn, assessment.id)
    decision = conn.execute(
        f"SELECT decision, model_version, rollback_to, reasons FROM {SCHEMA}.release_decisions "
        "WHERE assessment_id = ? AND partition_key = ? ORDER BY decided_at DESC LIMIT 1",
        [assessment.id, partition_key],
    ).df()
    metrics = _latest(conn, "group_metrics", assessment, partition_key)
    awaited = _cohort_results(conn, assessment, partition_key)
    if awaited is not None:  # the outcome-based rates are the cohort's, realised so far
        realised = awaited["realised"]
        metrics = pd.concat(
            [metrics, realised[~realised["metric"].isin(metrics["metric"])]], ignore_index=True
        )
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

    serving = serving_version(assessment.registry, releases)
    sections.append(
        (
            "At a glance",
            _summary(snap, entries, changes, actions, releases, serving),
        )
    )
    sections.append(
        (
            "What the model is for",
            f"{spec.intended_use.strip()}\n\n**Where it falls short**\n\n"
            + "\n".join(f"- {item}" for item in spec.limitations)
            + "\n\n**Who is affected**\n\n"
            + "\n".join(f"- **{s.id}**: {s.description}" for s in spec.stakeholders),
        )
    )
    trend = _trend(conn, assessment, partition_key, str(snap["model_version"]))
    sections.append(
        (
            "Impact register",
            "Entries by severity: breaches first, then warnings, then what could not be judged; "
            f"within each, rollback before block_release, review and notify. Trend: the entry's value "
            f"on each of the last {TREND_DAYS} days this model version assessed, up to this one (oldest "
            "first; `·` where it had none).\n\n"
            + _table(_register_columns(entries, trend))
            + _versions_side_by_side(conn, assessment, partition_key)
            + "\n\n**Changed since the previous snapshot**\n\n"
            + _table(changes),
        )
    )
    sections.append(
        (
            "Governance actions not yet resolved",
            "Open, acknowledged (by whom) or waived (by whom, approved by whom, until when); "
            "escalated ones name who they went to.\n\n" + _table(actions),
        )
    )
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
    if releases:
        verdict += "\n\n**Release state per model version**\n\n" + _table(
            pd.DataFrame(
                [
                    {
                        "model version": r.model_version,
                        "state": r.state,
                        "recommendation": r.recommendation,
                        "sign-offs": f"{r.signatures} of {r.sign_offs_required}",
                        "signed by": ", ".join(r.signers),
                    }
                    for r in releases
                ]
            )
        )
    sections.append(
        (
            "Release recommendation, sign-off and impact level",
            verdict
            + f"\n\nImpact level **{snap['impact_level']}** (score {markdown_cell(snap['impact_score'])}; raw "
            f"{markdown_cell(snap['raw_impact_score'])}, mitigation {markdown_cell(snap['mitigation_score'])}).",
        )
    )
    sections.append(
        (
            "Outcomes by group",
            (
                picture("selection rate by group", plot_rates(metrics, "selection_rate"))
                + picture("true positive rate by group", plot_rates(metrics, "true_positive_rate"))
                if not metrics.empty
                else ""
            )
            + _table(_rate_columns(metrics)),
        )
    )
    if awaited is not None:
        sections.append(("Outcomes that arrive late", _outcomes_section(awaited)))
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
            picture("disparities against their thresholds", plot_thresholds(gap_entries))
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
                plot_bars(
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
                plot_bars(per_decision, "label", "net benefit per decision by group"),
            )
            + _table(_kpi_columns(kpis[kpis["kind"] == "kpi"]))
            + (
                f"\n\n**Cost-benefit** (in {spec.analytics.cost_benefit.currency}: the value of each "
                "decision outcome, their sum, and the sum per decision)\n\n"
                + _table(
                    _kpi_columns(
                        kpis[kpis["kind"] == "cost_benefit"],
                        unit=spec.analytics.cost_benefit.currency,
                    )
                )
                if spec.analytics.cost_benefit is not None
                else ""
            )
            if not kpis.empty
            else "_none declared_",
        )
    )
    sweeps = scenarios[scenarios["kind"] == "threshold_sweep"] if not scenarios.empty else scenarios
    first_set = next((f for f in sweeps.get("feature_set", []) if f != "overall"), "overall")
    sections.append(
        (
            "Scenarios",
            picture("threshold sweep", plot_sweep(sweeps, first_set))
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
            picture("causal estimates with their intervals", plot_effects(causal))
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
    sources = ", ".join(f"`{s}` ({_shown_path(src.path)})" for s, src in spec.sources.items())
    models = " → ".join(f"`{m}`" for m in assessment.sql.order)
    sections.append(
        (
            "Versions and lineage",
            f"Model version **{snap['model_version']}**, data version `{snap['data_version']}`, snapshot "
            f"`{snap['snapshot_id']}` (version {snap['snapshot_version']}) of run `{snap['run_id']}`.\n\n"
            f"Sources: {sources}. SQL models: {models}. Results in the results database "
            f"`{assessment.paths.database.name}` (schema `impact`); OpenLineage events in `lineage/` of "
            "the state folder, or the configured backend.",
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
    html_path.write_text(render_html(title, markdown, plots), encoding="utf-8")
    return Report(markdown, md_path, html_path, len(plots))
