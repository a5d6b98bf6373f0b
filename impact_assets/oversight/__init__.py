"""People in the loop: decisions on governance actions, release sign-offs, notices and the monitoring record."""

from impact_assets.oversight._actions import DECISIONS, Decision, decide_action, find_action
from impact_assets.oversight._deliver import (
    NoticeReport,
    deliver_notices,
    notices_file,
    pending_notices,
)
from impact_assets.oversight._events import (
    SYSTEM,
    ActionState,
    action_state,
    live_action,
    os_user,
    record_event,
    record_notice,
)
from impact_assets.oversight._sign_off import (
    ReleaseState,
    check_sign_off,
    live_actions,
    record_sign_off,
    release_state,
    serving_version,
)

__all__ = [
    "DECISIONS",
    "SYSTEM",
    "ActionState",
    "Decision",
    "NoticeReport",
    "ReleaseState",
    "action_state",
    "check_sign_off",
    "decide_action",
    "deliver_notices",
    "find_action",
    "live_action",
    "live_actions",
    "notices_file",
    "os_user",
    "pending_notices",
    "record_event",
    "record_notice",
    "record_sign_off",
    "release_state",
    "serving_version",
]
