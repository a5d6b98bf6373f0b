"""Bundled real data and the demo's daily-batch simulator."""

from impact_assets.datasets._simulate import (
    Rollout,
    load_german_credit,
    simulate_batch,
    write_batch,
)

__all__ = ["Rollout", "load_german_credit", "simulate_batch", "write_batch"]
