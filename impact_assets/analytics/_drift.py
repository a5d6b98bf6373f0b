"""Drift of a partition against a reference snapshot, from histograms.

Each column becomes a few dozen counts: quantile bins of the reference for numeric columns, categories
for the others. A categorical column's counts are one query. A numeric column's values come out of
DuckDB once, sorted in memory (about 0.15 s per ten million): its bins are binary searches, and so is the
exact two-sample Kolmogorov-Smirnov statistic, evaluated at the smaller sample's values only. On Spark,
where rows stay on the cluster, the bins are one query and KS one windowed aggregate over the distinct
values. The statistics then come from the counts:

* PSI (population stability index): sum over bins of (p - q) * ln(p / q), current share p against
  reference share q, each share floored at 1e-4 so an empty bin stays finite; NULLs are a bin of their own;
* KS (numeric): the largest distance between the two empirical distribution functions, with the
  asymptotic two-sided p-value of :func:`scipy.stats.ks_2samp`;
* chi-square (categorical): Pearson's test of the 2 x k table of counts (no continuity correction),
  statistic and p-value as :func:`scipy.stats.chi2_contingency`;
* Jensen-Shannon: the distance of :func:`scipy.spatial.distance.jensenshannon` in base 2 (0 to 1).
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from impact_assets.sql import ident

__all__ = ["PSI_FLOOR", "DriftColumn", "column_drift", "psi"]

PSI_FLOOR = 1e-4
_NULL = "(null)"


def psi(current: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p = np.maximum(current / current.sum(), PSI_FLOOR)
    q = np.maximum(reference / reference.sum(), PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


class DriftColumn:
    """One column to compare: its name, role and whether it is numeric."""

    def __init__(self, name: str, role: str, numeric: bool) -> None:
        self.name, self.role, self.numeric = name, role, numeric


def _histograms(
    conn: duckdb.DuckDBPyConnection, current: str, reference: str, expr: str
) -> tuple[pd.Series, pd.Series]:
    """Counts per bin (``expr``) of both relations, in one query."""
    frame = conn.execute(
        f"SELECT 1 AS side, {expr} AS k, count(*) AS n FROM {current} GROUP BY 2 "
        f"UNION ALL SELECT 0 AS side, {expr} AS k, count(*) AS n FROM {reference} GROUP BY 2"
    ).df()
    frame["n"] = frame["n"].astype("int64")
    return tuple(frame.loc[frame["side"] == side].set_index("k")["n"] for side in (1, 0))


def column_drift(
    conn: duckdb.DuckDBPyConnection,
    current: str,
    reference: str,
    column: DriftColumn,
    *,
    bins: int = 10,
) -> list[dict]:
    """Drift statistics of one column; ``current`` and ``reference`` are relations holding it.

    Returns:
        Rows ``statistic, value, n, n_reference, reason``.
    """
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    col = ident(column.name)
    # on DuckDB a numeric column's values come out once, sorted: bins and KS are read off them
    in_memory = column.numeric and isinstance(conn, duckdb.DuckDBPyConnection)
    edges: list[float] = []
    if column.numeric:
        probs = ", ".join(str(i / bins) for i in range(1, bins))
        found = conn.execute(
            f"SELECT quantile_cont(CAST({col} AS DOUBLE), [{probs}]) FROM {reference}"
        ).fetchall()[0][0]
        edges = sorted({float(e) for e in found or [] if e is not None})
    if in_memory:
        (cur, cur_values), (ref, ref_values) = (
            _binned(conn, relation, col, edges) for relation in (current, reference)
        )
    elif column.numeric:
        cases = " ".join(
            f"WHEN CAST({col} AS DOUBLE) <= {e!r} THEN {i}" for i, e in enumerate(edges)
        )
        cur, ref = _histograms(
            conn,
            current,
            reference,
            f"CASE WHEN {col} IS NULL THEN -1 {cases} ELSE {len(edges)} END",
        )
    else:
        cur, ref = _histograms(
            conn, current, reference, f"COALESCE(CAST({col} AS VARCHAR), '{_NULL}')"
        )
    n, n_ref = int(cur.sum()), int(ref.sum())  # every row falls in a bin (NULL has its own)
    if n == 0 or n_ref == 0:
        why = "the partition is empty" if n == 0 else "the reference snapshot is empty"
        return [{"statistic": "psi", "value": None, "n": n, "n_reference": n_ref, "reason": why}]
    keys = sorted(set(cur.index) | set(ref.index), key=str)
    p = cur.reindex(keys, fill_value=0).to_numpy(dtype=float)
    q = ref.reindex(keys, fill_value=0).to_numpy(dtype=float)
    rows = [{"statistic": "psi", "value": psi(p, q)}]
    if column.numeric:
        m, k = int(p.sum() - cur.get(-1, 0)), int(q.sum() - ref.get(-1, 0))
        if not (m and k):
            d = float("nan")
        elif in_memory:
            d = _ks_in_memory(cur_values, ref_values)
        else:
            d = _ks_windowed(conn, current, reference, col)
        # the effective sample size m k / (m + k), at least 1 (it rounds to 0 for one row a side)
        p_value = float(stats.kstwo.sf(d, max(1, round(m * k / (m + k))))) if m and k else None
        rows += [{"statistic": "ks", "value": d}, {"statistic": "ks_pvalue", "value": p_value}]
    else:
        observed = np.vstack([p, q])
        observed = observed[:, observed.sum(axis=0) > 0]
        if observed.shape[1] > 1:
            chi2, p_value, _, _ = stats.chi2_contingency(observed, correction=False)
            rows += [
                {"statistic": "chi_square", "value": float(chi2)},
                {"statistic": "chi_square_pvalue", "value": float(p_value)},
            ]
        else:
            rows += [
                {"statistic": "chi_square", "value": 0.0},
                {"statistic": "chi_square_pvalue", "value": 1.0},
            ]
        rows.append({"statistic": "js_distance", "value": float(jensenshannon(p, q, base=2))})
    for row in rows:
        row.update(n=int(n), n_reference=int(n_ref), reason=None)
    return rows


def _ks_windowed(conn: Any, current: str, reference: str, col: str) -> float:
    """The two-sample KS statistic as one windowed aggregate over the distinct values (Spark)."""
    value = conn.execute(
        f"""WITH both_ AS (
                SELECT CAST({col} AS DOUBLE) AS x, 1 AS c FROM {current} WHERE {col} IS NOT NULL
                UNION ALL
                SELECT CAST({col} AS DOUBLE) AS x, 0 AS c FROM {reference} WHERE {col} IS NOT NULL
            ), by_value AS (
                SELECT x, sum(c) AS nc, count(*) - sum(c) AS nr FROM both_ GROUP BY x
            ), cdf AS (
                SELECT sum(nc) OVER w / sum(nc) OVER () AS fc, sum(nr) OVER w / sum(nr) OVER () AS fr
                FROM by_value WINDOW w AS (ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            )
            SELECT max(abs(fc - fr)) FROM cdf"""
    ).fetchall()[0][0]
    return float(value) if value is not None else float("nan")


def _binned(
    conn: duckdb.DuckDBPyConnection, relation: str, col: str, edges: list[float]
) -> tuple[pd.Series, np.ndarray]:
    """Counts per bin of a numeric column as the SQL ``CASE`` of :func:`column_drift` gives them
    (``-1`` for NULL, then ``x <= edge``, NaN last), and the sorted non-NULL values."""
    fetched = conn.execute(f"SELECT CAST({col} AS DOUBLE) AS x FROM {relation}").fetchnumpy()["x"]
    nulls = int(np.ma.count_masked(fetched))
    values = np.ma.compressed(fetched) if nulls else np.asarray(fetched, dtype="float64")
    values.sort()
    ends = np.searchsorted(values, np.asarray(edges, dtype="float64"), side="right")
    counts = np.diff(np.r_[0, ends, len(values)])
    binned = pd.Series(np.r_[nulls, counts], index=range(-1, len(edges) + 1), dtype="int64")
    return binned[binned > 0], values


def _ks_in_memory(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample KS statistic of two sorted samples, evaluated at the smaller one's values only.

    Between two consecutive values of the smaller sample its distribution function is flat while the
    other's only grows, so the largest distance on that stretch is at one of its ends: at a value
    (both functions there) or just below the next (both left limits). Ten million rows against a
    training sample cost two sorts and a binary search per training value.
    """
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    points = small[np.r_[True, small[1:] != small[:-1]]]
    distance = 0.0
    for side in ("right", "left"):
        f_small = np.searchsorted(small, points, side=side) / len(small)
        f_large = np.searchsorted(large, points, side=side) / len(large)
        distance = max(distance, float(np.abs(f_small - f_large).max()))
    return distance
