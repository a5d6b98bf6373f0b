"""The report's plots: matplotlib in black and grey, groups told apart by marker, line style,
position and direct labels, each returned as a PNG.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import pandas as pd

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

DPI = 80


def to_png(draw: Callable[[Any], None], height: float, width: float = 7.0) -> str:
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


def missing(value: object) -> bool:
    return value is None or value != value


def forest(ax: Any, rows: pd.DataFrame, label: str) -> None:
    """Estimates with their intervals, one row each, top to bottom, a marker shape per row."""
    for i, r in enumerate(rows.itertuples(index=False)):
        y = len(rows) - 1 - i
        if missing(r.value):
            ax.text(
                0.02, y, "no value", va="center", fontsize=8, transform=ax.get_yaxis_transform()
            )
            continue
        # a percentile bootstrap interval need not hold the estimate: draw what lies beyond it
        low = max(r.value - r.ci_low, 0.0) if not missing(r.ci_low) else 0.0
        high = max(r.ci_high - r.value, 0.0) if not missing(r.ci_high) else 0.0
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


def plot_rates(metrics: pd.DataFrame, metric: str) -> str | None:
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
                    f"{g} (n={int(n)})" + (" suppressed" if missing(v) else "")
                    for g, n, v in zip(f["group_key"], f["n"], f["value"], strict=True)
                ]
            )
            forest(ax, group, "label")
            if not overall.empty:
                ax.axvline(float(overall["value"].iloc[0]), linestyle="--", color="grey", lw=1)
            ax.set_xlim(0, 1)
            ax.set_title(
                f"{metric.replace('_', ' ')} by {name} (dashed: overall; bars: interval)",
                fontsize=9,
            )

    return to_png(draw, 1.2 + 0.45 * len(rows))


def plot_thresholds(rows: pd.DataFrame) -> str | None:
    """Register entries with their interval beside their warn (|) and breach (x) thresholds."""
    if rows.empty:
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        forest(ax, rows, "entry_id")
        for i, r in enumerate(rows.itertuples(index=False)):
            y = len(rows) - 1 - i
            if not missing(r.threshold_warn):
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

    return to_png(draw, 1.0 + 0.4 * len(rows))


def plot_bars(
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

    return to_png(draw, 1.0 + 0.3 * len(rows))


def plot_sweep(sweep: pd.DataFrame, feature_set: str) -> str | None:
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

    return to_png(draw, 3.2, width=9.0)


def plot_effects(causal: pd.DataFrame) -> str | None:
    """Each causal estimate with its interval against no effect (also those that failed a check)."""
    if causal["estimate"].isna().all():
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        forest(ax, causal.assign(value=causal["estimate"]), "name")
        ax.axvline(0, linestyle="--", color="grey", lw=1)
        ax.set_title("estimated effect and interval (dashed: no effect)", fontsize=9)

    return to_png(draw, 1.0 + 0.4 * len(causal))
