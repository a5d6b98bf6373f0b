"""What people decide on governance actions: acknowledge, assign, waive, resolve, comment.

Each decision is checked against the action's state and the governance policy, then appended as one
event naming the person (as given) and the OS user; a refused decision writes nothing.

    open ──acknowledge──▶ acknowledged ──resolve──▶ resolved
      │                        │
      └────────waive───────────┴──▶ waived ──(expiry, or a worse breach)──▶ open

Assignment and comments do not change the state. OSS Dagster has no user identity: the given name is
what the deployment vouches for (authenticate people at the reverse proxy, or with Dagster+).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import duckdb

from impact_assets.errors import OversightError
from impact_assets.oversight._events import SYSTEM, ActionState, action_state, record_event
from impact_assets.spec import GovernanceSpec
from impact_assets.storage import SCHEMA

__all__ = ["DECISIONS", "Decision", "decide_action", "find_action"]

Decision = Literal["acknowledge", "assign", "waive", "resolve", "comment"]
DECISIONS: tuple[Decision, ...] = ("acknowledge", "assign", "waive", "resolve", "comment")
_EVENT = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "waive": "waived",
    "resolve": "resolved",
    "comment": "commented",
}
#: From which states each decision may be taken.
_ALLOWED: dict[str, tuple[str, ...]] = {
    "acknowledge": ("open",),
    "assign": ("open", "acknowledged", "waived"),
    "waive": ("open", "acknowledged"),
    "resolve": ("open", "acknowledged", "waived"),
    "comment": ("open", "acknowledged", "waived", "resolved"),
}
_NEEDS_RATIONALE = ("waive", "resolve", "comment")
MIN_PREFIX = 6

UNKNOWN_ACTION = "no governance action {ref!r} in assessment {assessment}{hint}"
AMBIGUOUS_ACTION = (
    "action id prefix {ref!r} matches {count} actions of {assessment}; give more characters"
)


def find_action(conn: duckdb.DuckDBPyConnection, assessment_id: str, ref: str) -> ActionState:
    """The action whose id is ``ref``, or the only one it is a prefix of (at least 6 characters)."""
    ref = ref.strip()
    rows = (
        conn.execute(
            f"SELECT action_id FROM {SCHEMA}.governance_actions WHERE assessment_id = ? AND starts_with(action_id, ?)",
            [assessment_id, ref],
        ).fetchall()
        if len(ref) >= MIN_PREFIX
        else []
    )
    exact = [r for (r,) in rows if r == ref]
    if len(rows) > 1 and not exact:
        raise OversightError(
            AMBIGUOUS_ACTION.format(ref=ref, count=len(rows), assessment=assessment_id),
            context={"action": ref},
        )
    if not rows:
        live = conn.execute(
            f"SELECT left(action_id, 8) FROM {SCHEMA}.governance_action_state WHERE assessment_id = ? AND last_state <> 'resolved' ORDER BY opened_at",
            [assessment_id],
        ).fetchall()
        hint = (
            f" (live actions: {', '.join(a for (a,) in live)}; `impact-assets actions list` shows them)"
            if live
            else " (it has no live actions)"
        )
        if len(ref) < MIN_PREFIX:
            hint = f" (give at least {MIN_PREFIX} characters of the id){hint}"
        raise OversightError(
            UNKNOWN_ACTION.format(ref=ref, assessment=assessment_id, hint=hint),
            context={"action": ref},
        )
    found = action_state(conn, exact[0] if exact else rows[0][0])
    assert found is not None
    return found


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def decide_action(
    conn: duckdb.DuckDBPyConnection,
    assessment_id: str,
    action_ref: str,
    decision: Decision,
    *,
    by: str,
    governance: GovernanceSpec,
    rationale: str | None = None,
    assignee: str | None = None,
    approver: str | None = None,
    expires_on: dt.date | None = None,
    at: dt.datetime | None = None,
) -> ActionState:
    """Record one person's decision on an action and return the action's new state.

    Args:
        by: Who decides (their name; ``system`` is reserved for the product's own rules).
        rationale: Why; required to waive, resolve or comment.
        assignee: The new owner (``assign``).
        approver: Who approves a waiver: someone other than ``by`` (``waive``).
        expires_on: The last day a waiver holds, at most ``governance.max_waiver_days`` ahead (``waive``).

    Raises:
        OversightError: The action is unknown, the decision does not fit its state, or a field it
            needs is missing or out of bounds; nothing is written.
    """
    if decision not in DECISIONS:
        raise OversightError(
            f"unknown decision {decision!r}; one of {', '.join(DECISIONS)}",
            context={"decision": decision},
        )
    at = at or dt.datetime.now(dt.UTC)
    person = _text(by)
    why = _text(rationale)
    where = {"assessment": assessment_id, "action": action_ref, "decision": decision}
    if person is None:
        raise OversightError("say who decides (--by)", context=where)
    if person.lower() == SYSTEM:
        raise OversightError(f"{SYSTEM!r} is reserved for the product's own rules", context=where)
    if decision in _NEEDS_RATIONALE and why is None:
        raise OversightError(f"a rationale is required to {decision} an action", context=where)
    action = find_action(conn, assessment_id, action_ref)
    where["action"] = action.action_id
    state = action.state_at(at)
    if state not in _ALLOWED[decision]:
        raise OversightError(
            f"action {action.action_id} ({action.entry_id}) is {state}: it cannot be {_EVENT[decision]}"
            + (f" (acknowledged by {action.acknowledged_by})" if state == "acknowledged" else ""),
            context=where,
        )
    fields: dict[str, object] = {}
    detail = f"{_EVENT[decision]} by {person}"
    if decision == "assign":
        new_owner = _text(assignee)
        if new_owner is None:
            raise OversightError("say who the action is assigned to (--to)", context=where)
        if new_owner == action.owner:
            raise OversightError(f"the action is already owned by {new_owner}", context=where)
        fields["assignee"] = new_owner
        detail = f"assigned to {new_owner} by {person} (was {action.owner})"
    if decision == "waive":
        fields.update(_waiver(action, person, approver, expires_on, governance, at, where))
        detail = f"waived by {person}, approved by {fields['approver']}, until {expires_on}"
    record_event(
        conn,
        action.action_id,
        _EVENT[decision],
        at=at,
        detail=detail,
        actor=person,
        rationale=why,
        **fields,  # type: ignore[arg-type]
    )
    updated = action_state(conn, action.action_id)
    assert updated is not None
    return updated


def _waiver(
    action: ActionState,
    person: str,
    approver: str | None,
    expires_on: dt.date | None,
    governance: GovernanceSpec,
    at: dt.datetime,
    where: dict,
) -> dict[str, object]:
    approved_by = _text(approver)
    if approved_by is None:
        raise OversightError("a waiver needs an approver (--approver)", context=where)
    if approved_by == person:
        raise OversightError(
            f"{person} cannot approve their own waiver: name another approver", context=where
        )
    if expires_on is None:
        raise OversightError(
            f"a waiver needs an expiry date (--expires), at most {governance.max_waiver_days} days ahead",
            context=where,
        )
    today = at.date()
    if expires_on <= today:
        raise OversightError(
            f"the waiver's expiry {expires_on} is not after today ({today})", context=where
        )
    if (expires_on - today).days > governance.max_waiver_days:
        raise OversightError(
            f"the waiver's expiry {expires_on} is {(expires_on - today).days} days ahead; the policy allows at most {governance.max_waiver_days}",
            context=where,
        )
    # the waiver holds through its last day, in UTC
    expires_at = dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return {"approver": approved_by, "expires_at": expires_at, "value": action.last_breach_value}
