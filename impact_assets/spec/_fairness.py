"""How group metrics are computed: minimum group size, reference groups and bootstrap intervals."""

from __future__ import annotations

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import SpecModel


class BootstrapSpec(SpecModel):
    """Bootstrap confidence intervals of every group metric and disparity."""

    resamples: int = Field(default=1000, ge=0, le=100_000, description="0 turns intervals off.")
    level: float = Field(default=0.95, gt=0.0, lt=1.0)
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the resampling (results are reproducible)."""


class FairnessSpec(SpecModel):
    """How group metrics and disparities are computed."""

    bootstrap: BootstrapSpec = BootstrapSpec()
    """Bootstrap confidence intervals of every group metric and disparity."""
    calibration_bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="Equal-width score bins of the expected calibration error; must divide 100.",
    )
    reference_groups: dict[str, str] = Field(
        default_factory=dict,
        description="Feature set -> group that disparities are also computed against, e.g. `{sex: male}`.",
    )

    @model_validator(mode="after")
    def _bins_divide_100(self) -> FairnessSpec:
        if 100 % self.calibration_bins:
            raise ValueError(
                f"calibration_bins must divide 100 (2, 4, 5, 10, 20, 25, 50, 100), got {self.calibration_bins}"
            )
        return self
