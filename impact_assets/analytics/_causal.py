"""A difference-in-differences estimate of a rollout's effect on an outcome, with a pre-trend check.

The rows of the treated and comparison segments are aggregated in DuckDB to one cell per segment and
day (mean outcome, rows), so the estimate never needs the rows in Python. On the cells, weighted by
their rows, statsmodels fits

    outcome ~ treated + post + treated:post

by weighted least squares with standard errors clustered by day (both segments of a day share its
shocks); the coefficient of ``treated:post`` is the effect, with its confidence interval. The weighted
fit on cell means gives the same point estimate as OLS on the rows.

The pre-trend check regresses the daily gap between the segments (treated mean minus comparison mean)
on the day over the pre-period, as a random-effects meta-regression: each day's gap has its sampling
variance (each segment's within-cell variance, pooled over the pre-period, over the day's rows) plus
the day-to-day spread beyond it (DerSimonian-Laird), and the slope gets a z test. A few pre-period
days that happen to lie on a line cannot make a slope within sampling noise look significant, as
standard errors clustered on four days would. A slope significant at 5 % means the segments were already
drifting apart, so the parallel-trends assumption behind the estimate fails; the estimate is then
reported with that reason and no value, and a register entry on it is ``insufficient_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import statsmodels.api as sm

__all__ = ["PRE_TREND_ALPHA", "DidEstimate", "did_estimate"]

PRE_TREND_ALPHA = 0.05
PRE_TREND_FAILED = "pre-trend check failed: the segments drifted apart before the rollout (slope {slope:+.4g} per day, p = {p:.3g})"
TOO_FEW = (
    "too few days: {pre} before and {post} after the rollout with both segments (need 2 and 1)"
)


@dataclass(frozen=True)
class DidEstimate:
    estimate: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    pre_trend_slope: float | None
    pre_trend_p: float | None
    pre_trend_ok: bool | None
    n_treated: int
    n_comparison: int
    days_pre: int
    days_post: int
    reason: str | None

    @property
    def value(self) -> float | None:
        """The effect when it can be trusted (pre-trends parallel), else None."""
        return self.estimate if self.pre_trend_ok else None


def _fit(
    cells: pd.DataFrame, formula_columns: list[str]
) -> sm.regression.linear_model.RegressionResultsWrapper:
    import statsmodels.api as sm

    design = sm.add_constant(cells[formula_columns].astype(float), has_constant="add")
    return sm.WLS(cells["mean"], design, weights=cells["n"]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(cells["day"])[0]}, use_t=True
    )


def _pre_trend(pre: pd.DataFrame) -> tuple[float, float]:
    """Slope per day of the treated-minus-comparison gap over the pre-period cells, and its p-value."""
    import statsmodels.api as sm
    from scipy import stats

    segments = pre.pivot_table(index="day", columns="treated", values=["mean", "n", "var"])
    segments = segments.sort_index()
    # each segment's within-cell variance pooled over the pre-period (a day's own may rest on few rows)
    pooled = {
        g: float(
            ((segments["n", g] - 1) * segments["var", g].fillna(0)).sum()
            / max(float((segments["n", g] - 1).sum()), 1.0)
        )
        for g in (0, 1)
    }
    gap = (segments["mean", 1] - segments["mean", 0]).to_numpy()
    sampling = (pooled[1] / segments["n", 1] + pooled[0] / segments["n", 0]).to_numpy()
    design = np.column_stack([np.ones(len(gap)), np.arange(len(gap), dtype=float)])
    if sampling.min() <= 0:  # constant outcomes: only the days' own spread is left
        fit = sm.OLS(gap, design).fit()
        return float(fit.params[1]), float(fit.pvalues[1]) if len(gap) > 2 else 1.0
    # DerSimonian-Laird: day-to-day spread of the gap beyond sampling noise, added to each day's variance
    weights = 1.0 / sampling
    fixed = sm.WLS(gap, design, weights=weights).fit()
    q = float(weights @ fixed.resid**2)
    xtwx_inv = np.linalg.inv(design.T @ (design * weights[:, None]))
    trace = weights.sum() - np.trace(xtwx_inv @ design.T @ (design * (weights**2)[:, None]))
    tau2 = max(0.0, (q - (len(gap) - 2)) / trace) if trace > 0 else 0.0
    weights = 1.0 / (sampling + tau2)
    information = np.linalg.inv(design.T @ (design * weights[:, None]))
    slope = float((information @ design.T @ (weights * gap))[1])
    std_error = float(np.sqrt(information[1, 1]))
    return slope, float(2 * stats.norm.sf(abs(slope) / std_error))


def did_estimate(cells: pd.DataFrame, *, level: float = 0.95) -> DidEstimate:
    """Difference in differences on per-segment, per-day cells.

    Args:
        cells: Columns ``day`` (date), ``treated`` (0/1), ``post`` (0/1), ``mean`` (outcome), ``var``
            (the outcome's sample variance in the cell) and ``n`` (rows).
        level: Confidence level of the interval.
    """
    cells = cells[cells["n"] > 0].copy()
    both = cells.groupby("day")["treated"].nunique() == 2
    cells = cells[cells["day"].isin(both[both].index)]
    pre_days = cells.loc[cells["post"] == 0, "day"].nunique()
    post_days = cells.loc[cells["post"] == 1, "day"].nunique()
    n_treated = int(cells.loc[cells["treated"] == 1, "n"].sum())
    n_comparison = int(cells.loc[cells["treated"] == 0, "n"].sum())
    if pre_days < 2 or post_days < 1:
        return DidEstimate(
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            n_treated,
            n_comparison,
            pre_days,
            post_days,
            TOO_FEW.format(pre=pre_days, post=post_days),
        )
    cells["treated_post"] = cells["treated"] * cells["post"]
    fit = _fit(cells, ["treated", "post", "treated_post"])
    low, high = fit.conf_int(alpha=1 - level).loc["treated_post"]
    slope, slope_p = _pre_trend(cells[cells["post"] == 0])
    parallel = bool(np.isfinite(slope_p) and slope_p >= PRE_TREND_ALPHA)
    return DidEstimate(
        estimate=float(fit.params["treated_post"]),
        std_error=float(fit.bse["treated_post"]),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(fit.pvalues["treated_post"]),
        pre_trend_slope=slope,
        pre_trend_p=slope_p,
        pre_trend_ok=parallel,
        n_treated=n_treated,
        n_comparison=n_comparison,
        days_pre=pre_days,
        days_post=post_days,
        reason=None if parallel else PRE_TREND_FAILED.format(slope=slope, p=slope_p),
    )
