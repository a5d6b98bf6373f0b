"""What follows from the register: governance actions, the release policy and the impact level
questionnaire.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from impact_assets.spec._base import ActionType, Identifier, NonEmptyText, SpecModel
from impact_assets.spec._oversight import SignOffPolicy


class GovernanceSpec(SpecModel):
    """How breaches become governance actions."""

    due_days: dict[ActionType, int] = Field(
        default_factory=lambda: {"notify": 14, "review": 14, "block_release": 7, "rollback": 2},
        description="Days from opening to due date, per action type.",
    )
    resolve_after_passes: int = Field(
        default=3,
        ge=1,
        description="An open action resolves itself after this many consecutive passing snapshots of its entry.",
    )
    escalate_after_breaches: int | None = Field(
        default=3,
        ge=2,
        description="An open action whose entry breaches this many times escalates to the entry's `escalate_to` (once); `null`: only when overdue.",
    )
    max_waiver_days: int = Field(
        default=90, ge=1, description="The longest a waiver may run before it expires."
    )


class ReleaseSpec(SpecModel):
    """Release criteria: which register states hold or roll back a model version."""

    hold_on: tuple[
        Literal["breach", "warn", "insufficient_data", "suppressed", "awaiting_outcomes"], ...
    ] = Field(
        default=("breach", "insufficient_data"),
        description="Statuses of `block_release` entries that hold the release.",
    )
    rollback_on: tuple[
        Literal["breach", "warn", "insufficient_data", "suppressed", "awaiting_outcomes"], ...
    ] = Field(
        default=("breach",),
        description="Statuses of `rollback` entries that roll the version back to the last approved one.",
    )
    sign_off: SignOffPolicy | None = None
    """Who must sign an approval off before the version is promoted; omitted, approval is automatic."""


class ImpactQuestion(SpecModel):
    """One answered question of the impact questionnaire (after the Canada Algorithmic Impact Assessment)."""

    question: NonEmptyText
    """The question, as asked."""
    points: int = Field(ge=0, description="Points of the answer given.")
    max: int = Field(ge=1, description="Points of the highest-scoring answer.")
    control: Identifier | None = Field(
        default=None, description="Mitigation only: register entry whose passing earns the credit."
    )

    @model_validator(mode="after")
    def _within_max(self) -> ImpactQuestion:
        if self.points > self.max:
            raise ValueError(f"points ({self.points}) exceed max ({self.max})")
        return self


class ImpactLevelSpec(SpecModel):
    """Questionnaire answers giving the raw impact score and the mitigation score."""

    impact: tuple[ImpactQuestion, ...] = Field(min_length=1)
    """Questions on the model's potential impact."""
    mitigation: tuple[ImpactQuestion, ...] = ()
    """Questions on mitigations; those with a `control` count only while its entry passes."""
