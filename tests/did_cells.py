"""Simulated segment-day cells with a known effect, for checking the difference-in-differences estimator.

Used by the tests and by ``bench/did_calibration.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["did_cells"]


def did_cells(
    rng: np.random.Generator,
    *,
    effect: float,
    trend: float = 0.0,
    pre_days: int = 20,
    post_days: int = 20,
    own_shock_sd: float = 0.0,
    rows: int = 200,
) -> pd.DataFrame:
    """Daily cells of a comparison and a treated segment (``rows`` binary outcomes each).

    Both segments share a day shock (sd 0.02); the treated one gains ``effect`` after ``pre_days``,
    drifts by ``trend`` per day, and has shocks of its own with sd ``own_shock_sd``.
    """
    cells = []
    for d in range(pre_days + post_days):
        post, shock = int(d >= pre_days), rng.normal(0, 0.02)
        for treated in (0, 1):
            p = (
                0.6
                + shock
                + 0.05 * treated
                + 0.01 * post
                + effect * treated * post
                + trend * treated * d
                + (rng.normal(0, own_shock_sd) if treated and own_shock_sd else 0.0)
            )
            mean = rng.binomial(rows, p) / rows
            cells.append(
                {
                    "day": d,
                    "treated": treated,
                    "post": post,
                    "mean": mean,
                    "var": mean * (1 - mean) * rows / (rows - 1),
                    "n": rows,
                }
            )
    return pd.DataFrame(cells)
