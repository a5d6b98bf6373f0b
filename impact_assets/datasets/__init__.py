"""Bundled real data and the demo's daily-batch simulator."""

from impact_assets.datasets._simulate import (
    DATASETS,
    BundledDataset,
    Rollout,
    delayed_outcomes,
    simulate_batch,
    write_batch,
)

__all__ = [
    "DATASETS",
    "BundledDataset",
    "Rollout",
    "delayed_outcomes",
    "simulate_batch",
    "write_batch",
]
