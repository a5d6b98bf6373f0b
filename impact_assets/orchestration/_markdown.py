"""Small Markdown renderings of result tables for asset metadata."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from impact_assets._markdown import markdown_table
from impact_assets.register import EntryResult

__all__ = ["register_markdown", "selection_rates_markdown"]


def register_markdown(
    results: Sequence[EntryResult], thresholds: dict[str, tuple[float | None, float, str]]
) -> str:
    """The register of one snapshot: entry, value, n, thresholds, status, reason."""
    rows = []
    for r in results:
        warn, breach, direction = thresholds[r.entry_id]
        interval = (
            f"[{r.ci_low:.4g}, {r.ci_high:.4g}]"
            if r.ci_low is not None and r.ci_high is not None
            else None
        )
        rows.append(
            (
                r.entry_id,
                r.value,
                interval,
                r.n,
                warn,
                breach,
                direction,
                f"**{r.status}**",
                r.reason,
            )
        )
    return markdown_table(
        ("entry", "value", "95 % CI", "n", "warn", "breach", "direction", "status", "reason"), rows
    )


def selection_rates_markdown(metrics: pd.DataFrame) -> str:
    """Selection rate, TPR, FPR and AUC by group with their intervals, suppressed groups marked."""

    def shown(r) -> str | None:
        if r is None or pd.isna(r.value):
            return None
        if "ci_low" in r._fields and not pd.isna(r.ci_low):
            return f"{r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
        return f"{r.value:.3f}"

    found = {(r.feature_set, r.group_key, r.metric): r for r in metrics.itertuples()}
    columns = ("selection_rate", "true_positive_rate", "false_positive_rate", "auc")
    rows = []
    for r in metrics[metrics["metric"] == "count"].itertuples():
        if r.suppressed:
            rows.append((r.feature_set, r.group_key, r.n, "suppressed", "—", "—", "—"))
            continue
        rows.append(
            (
                r.feature_set,
                r.group_key,
                r.n,
                *(shown(found.get((r.feature_set, r.group_key, m))) for m in columns),
            )
        )
    return markdown_table(
        ("feature set", "group", "n", "selection rate", "TPR", "FPR", "AUC"), rows
    )
