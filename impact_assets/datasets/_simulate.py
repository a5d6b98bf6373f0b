"""Daily application batches simulated from the bundled real German Credit records.

Each batch resamples the 1,000 real applicants with replacement and adds realistic noise: loan
amounts vary by about ±10 %, durations and ages shift by a few units, a small share of categorical
answers and outcomes are redrawn. A batch depends only on the seed and its date, so any day can be
regenerated identically. From ``drift_from`` on, batches drift: younger applicants and larger loans.

The outcome column is included in each batch so outcome-based metrics (TPR, FPR) can be computed;
in a real lender these arrive months later and are joined to the decision.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

__all__ = ["Rollout", "load_german_credit", "simulate_batch", "write_batch"]

_NUMERIC_NOISE = {"duration_in_month": (3, 4, 72), "age_in_years": (2, 19, 75)}
_CATEGORICAL = (
    "status_of_existing_checking_account",
    "savings_account_and_bonds",
    "present_employment_since",
    "housing",
    "job",
    "purpose",
)


def load_german_credit() -> pd.DataFrame:
    """The 1,000 real applicants (see ``datasets/german_credit/SOURCE.md``)."""
    with (
        resources.files("impact_assets.datasets")
        .joinpath("german_credit/german_credit.csv")
        .open("r", encoding="utf-8") as fh
    ):
        return pd.read_csv(fh)


def _rng(seed: int, day: dt.date) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(day.isoformat().encode())])


def simulate_batch(
    day: dt.date,
    *,
    rows: int,
    seed: int = 0,
    drift_from: dt.date | None = None,
    base: pd.DataFrame | None = None,
    rollout: Rollout | None = None,
) -> pd.DataFrame:
    """One day's applications.

    Args:
        day: The application date.
        rows: Expected number of applications (the actual count is Poisson around it).
        seed: Base seed; with ``day`` it fixes the batch.
        drift_from: First day of the drifted regime, if any.
        base: Records to resample; the bundled German Credit data by default.
        rollout: A new offer for one segment from a given day: its rows get ``offer_version`` 2
            (others 1) and a share of its defaults is repaid instead, a planted effect on repayment.

    Example:
        >>> batch = simulate_batch(dt.date(2026, 1, 5), rows=200, seed=1)
        >>> sorted(batch.columns)[:3], batch["application_date"].nunique()
        (['age_in_years', 'application_date', 'application_id'], 1)
    """
    base = load_german_credit() if base is None else base
    rng = _rng(seed, day)
    n = max(1, int(rng.poisson(rows)))
    drifted = drift_from is not None and day >= drift_from
    weights = np.ones(len(base))
    if drifted:
        weights = np.where(base["age_in_years"] < 30, 3.0, 1.0)
    picked = rng.choice(len(base), size=n, replace=True, p=weights / weights.sum())
    batch = base.iloc[picked].reset_index(drop=True).copy()
    scale = rng.lognormal(mean=0.15 if drifted else 0.0, sigma=0.1, size=n)
    batch["credit_amount"] = np.maximum(
        250, np.round(batch["credit_amount"].to_numpy() * scale)
    ).astype("int64")
    for column, (spread, low, high) in _NUMERIC_NOISE.items():
        shift = rng.integers(-spread, spread + 1, size=n)
        batch[column] = np.clip(batch[column].to_numpy() + shift, low, high).astype("int64")
    for column in _CATEGORICAL:
        redraw = rng.random(n) < 0.02
        if redraw.any():
            batch.loc[redraw, column] = rng.choice(base[column].to_numpy(), size=int(redraw.sum()))
    flip = rng.random(n) < 0.03
    batch.loc[flip, "creditability"] = np.where(
        batch.loc[flip, "creditability"] == "good", "bad", "good"
    )
    batch.insert(0, "application_id", [f"{day:%Y%m%d}-{i:06d}" for i in range(n)])
    batch.insert(1, "application_date", pd.Timestamp(day).date())
    # Extracted in the night after the day, between 01:00 and 02:30 UTC.
    extracted = (
        pd.Timestamp(day) + pd.Timedelta(hours=25) + pd.Timedelta(minutes=int(rng.integers(0, 91)))
    )
    batch.insert(2, "loaded_at", extracted + pd.to_timedelta(rng.integers(0, 60, size=n), unit="s"))
    version = np.ones(n, dtype="int64")
    if rollout is not None and day >= rollout.start:
        treated = (batch[rollout.column].astype(str) == rollout.value).to_numpy()
        version[treated] = 2
        repaid = (
            treated
            & (batch["creditability"] == "bad").to_numpy()
            & (rng.random(n) < rollout.flip_to_good)
        )
        batch.loc[repaid, "creditability"] = "good"
    batch["offer_version"] = version
    return batch


@dataclass(frozen=True)
class Rollout:
    """A new offer for the rows whose ``column`` is ``value``, from ``start`` on."""

    column: str
    value: str
    start: dt.date
    flip_to_good: float

    def planted_effect(self, base: pd.DataFrame | None = None) -> float:
        """The expected rise of the segment's repayment rate: the flipped share of its default rate."""
        base = load_german_credit() if base is None else base
        segment = base[base[self.column].astype(str) == self.value]
        return self.flip_to_good * float((segment["creditability"] == "bad").mean())


def write_batch(batch: pd.DataFrame, path: Path) -> Path:
    """Write a batch as Parquet, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with duckdb.connect() as conn:
        conn.register("batch", batch)
        conn.execute(
            "COPY (SELECT * REPLACE (CAST(application_date AS DATE) AS application_date) FROM batch) TO ? (FORMAT parquet)",
            [str(tmp)],
        )
    os.replace(tmp, path)
    return path
