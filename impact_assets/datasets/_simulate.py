"""Daily batches simulated from a bundled real dataset (German Credit, or Adult census income).

Each batch resamples the real records with replacement and adds realistic noise: numeric attributes
shift by a few units, a small share of categorical answers and outcomes are redrawn, and (German
Credit) loan amounts vary by about ±10 %. A batch depends only on the seed and its date, so any day can
be regenerated identically. From ``drift_from`` on, batches drift: three times as many people under
30 and (German Credit) larger loans.

The outcome column is included in each batch, unless outcomes are delivered late
(:func:`delayed_outcomes`): then each decision's outcome is observed a random number of days later
and lands in a file of the day it is observed, as a servicing system reports repayments and defaults.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

__all__ = [
    "DATASETS",
    "BundledDataset",
    "Rollout",
    "delayed_outcomes",
    "simulate_batch",
    "write_batch",
]


@dataclass(frozen=True)
class BundledDataset:
    """A real dataset shipped in the package, and how the simulator varies it."""

    name: str
    file: str  # inside ``impact_assets/datasets``
    outcome: str  # the outcome column
    favourable: str  # its favourable value (repaid, earns over 50K)
    unfavourable: str
    age: str  # the age column (drift: more people under 30)
    numeric_noise: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # spread, min, max
    categorical: tuple[str, ...] = ()  # columns of which 2 % of answers are redrawn
    amount: str | None = None  # a money column scaled by about ±10 % (and up when drifted)

    def load(self) -> pd.DataFrame:
        with resources.files("impact_assets.datasets").joinpath(self.file).open("rb") as fh:
            return pd.read_csv(fh, compression="gzip" if self.file.endswith(".gz") else None)


DATASETS = {
    d.name: d
    for d in (
        BundledDataset(
            name="german_credit",
            file="german_credit/german_credit.csv",
            outcome="creditability",
            favourable="good",
            unfavourable="bad",
            age="age_in_years",
            numeric_noise={"duration_in_month": (3, 4, 72), "age_in_years": (2, 19, 75)},
            categorical=(
                "status_of_existing_checking_account",
                "savings_account_and_bonds",
                "present_employment_since",
                "housing",
                "job",
                "purpose",
            ),
            amount="credit_amount",
        ),
        BundledDataset(
            name="adult",
            file="adult/adult.csv.gz",
            outcome="income",
            favourable=">50K",
            unfavourable="<=50K",
            age="age",
            numeric_noise={"age": (2, 17, 90), "hours_per_week": (2, 1, 99)},
            categorical=("workclass", "occupation", "marital_status"),
        ),
    )
}


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
    dataset: str = "german_credit",
) -> pd.DataFrame:
    """One day's applications, resampled from ``dataset`` (a key of :data:`DATASETS`).

    Args:
        day: The application date.
        rows: Expected number of applications (the actual count is Poisson around it).
        seed: Base seed; with ``day`` it fixes the batch.
        drift_from: First day of the drifted regime, if any.
        base: Records to resample; the dataset's bundled records by default.
        rollout: A new offer for one segment from a given day: its rows get ``offer_version`` 2
            (others 1) and a share of its unfavourable outcomes turns favourable, a planted effect.
        dataset: Which bundled dataset, and so which columns get noise and drift.

    Example:
        >>> batch = simulate_batch(dt.date(2026, 1, 5), rows=200, seed=1)
        >>> sorted(batch.columns)[:3], batch["application_date"].nunique()
        (['age_in_years', 'application_date', 'application_id'], 1)
    """
    spec = DATASETS[dataset]
    base = spec.load() if base is None else base
    rng = _rng(seed, day)
    n = max(1, int(rng.poisson(rows)))
    drifted = drift_from is not None and day >= drift_from
    weights = np.ones(len(base))
    if drifted:
        weights = np.where(base[spec.age] < 30, 3.0, 1.0)
    picked = rng.choice(len(base), size=n, replace=True, p=weights / weights.sum())
    batch = base.iloc[picked].reset_index(drop=True).copy()
    if spec.amount is not None:
        scale = rng.lognormal(mean=0.15 if drifted else 0.0, sigma=0.1, size=n)
        batch[spec.amount] = np.maximum(
            250, np.round(batch[spec.amount].to_numpy() * scale)
        ).astype("int64")
    for column, (spread, low, high) in spec.numeric_noise.items():
        shift = rng.integers(-spread, spread + 1, size=n)
        batch[column] = np.clip(batch[column].to_numpy() + shift, low, high).astype("int64")
    for column in spec.categorical:
        redraw = rng.random(n) < 0.02
        if redraw.any():
            batch.loc[redraw, column] = rng.choice(base[column].to_numpy(), size=int(redraw.sum()))
    flip = rng.random(n) < 0.03
    batch.loc[flip, spec.outcome] = np.where(
        batch.loc[flip, spec.outcome] == spec.favourable, spec.unfavourable, spec.favourable
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
        turned = (
            treated
            & (batch[spec.outcome] == spec.unfavourable).to_numpy()
            & (rng.random(n) < rollout.flip_to_good)
        )
        batch.loc[turned, spec.outcome] = spec.favourable
    batch["offer_version"] = version
    return batch


def delayed_outcomes(
    batch: pd.DataFrame,
    day: dt.date,
    *,
    seed: int,
    min_days: int,
    max_days: int,
    dataset: str = "german_credit",
    outcome: str = "repaid",
) -> pd.DataFrame:
    """The outcomes of one day's batch, each observed ``min_days``..``max_days`` days later.

    Returns:
        Columns ``application_id``, ``outcome`` (1 = the favourable outcome) and ``observed_on``.
    """
    spec = DATASETS[dataset]
    rng = np.random.default_rng([seed, zlib.crc32(f"outcomes:{day.isoformat()}".encode())])
    delay = rng.integers(min_days, max_days + 1, size=len(batch))
    return pd.DataFrame(
        {
            "application_id": batch["application_id"].to_numpy(),
            outcome: (batch[spec.outcome] == spec.favourable).astype("int64").to_numpy(),
            "observed_on": [day + dt.timedelta(days=int(d)) for d in delay],
        }
    )


@dataclass(frozen=True)
class Rollout:
    """A new offer for the rows whose ``column`` is ``value``, from ``start`` on."""

    column: str
    value: str
    start: dt.date
    flip_to_good: float

    def planted_effect(self, dataset: str = "german_credit") -> float:
        """The expected rise of the segment's favourable rate: the flipped share of its unfavourable one."""
        spec = DATASETS[dataset]
        base = spec.load()
        segment = base[base[self.column].astype(str) == self.value]
        return self.flip_to_good * float((segment[spec.outcome] == spec.unfavourable).mean())


def write_batch(batch: pd.DataFrame, path: Path, *, date_column: str = "application_date") -> Path:
    """Write a batch (or outcomes, dated by ``observed_on``) as Parquet, atomically (a reader
    never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with duckdb.connect() as conn:
        conn.register("batch", batch)
        conn.execute(
            f'COPY (SELECT * REPLACE (CAST("{date_column}" AS DATE) AS "{date_column}") FROM batch) TO ? (FORMAT parquet)',
            [str(tmp)],
        )
    os.replace(tmp, path)
    return path
