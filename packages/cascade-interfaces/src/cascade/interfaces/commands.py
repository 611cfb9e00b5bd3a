"""What is sent to the engine running a run, and its answers: a cancel, a decision on a held
task, a request for the run's state (docs/protocol.md: "Commands (cancel)", "Decisions on a
held task", "Snapshots").

An engine listens on :func:`command_filter` and :func:`snapshot_request_topic`, decodes each
request strictly, and answers a cancel or a decision on :func:`reply_topic`; the writers of
these requests are ``cascade.control``'s. What a person asks of every verb of steering is one
request type here, checked where it is made (:class:`ControlError` naming the field):
:class:`Pause`, :class:`Limit`, :class:`Resume`, :class:`Cancel`, :class:`Decide` (in the
engine's own process too, ``Engine.decide``) and :class:`Start`, and :func:`read_request` reads
one from a JSON body; the checks of who issues a request, why, and the run it names are here
with them (``cascade.control`` exports them again and sends them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._asked import (
        FULL_ID,
        MAX_OPERATOR_LENGTH,
        MAX_REASON_LENGTH,
        ControlError,
        checked_name,
        checked_prefix,
        checked_reason,
        checked_text,
        default_operator,
        is_full,
        new_request_id,
    )
    from ._commands import (
        MAX_LISTED_TASKS,
        CancelOutcome,
        CancelReply,
        CancelRequest,
        TaskRef,
        cancel_topic,
        check_reply_topic,
        command_filter,
        decode_cancel_reply,
        decode_cancel_request,
        reply_filter,
        reply_topic,
    )
    from ._decisions import (
        DECISIONS,
        DEFAULT_DECISIONS,
        MAX_RESULT_BYTES,
        MAX_TASK_LENGTH,
        Decide,
        Decided,
        Decision,
        DecisionCount,
        DecisionOutcome,
        DecisionReply,
        DecisionRequest,
        decide_topic,
        decode_decision_reply,
        decode_decision_request,
    )
    from ._requests import (
        Cancel,
        Limit,
        Pause,
        Resume,
        Start,
        read_request,
    )
    from ._snapshots import (
        SNAPSHOT_INTERVAL,
        SnapshotRequest,
        decode_snapshot_request,
        snapshot_request_topic,
    )
    from ._start_request import MIN_RERUN_PREFIX

__all__ = [
    "MIN_RERUN_PREFIX",
    "Cancel",
    "Limit",
    "Pause",
    "Resume",
    "Start",
    "read_request",
    "CancelOutcome",
    "CancelReply",
    "CancelRequest",
    "ControlError",
    "DECISIONS",
    "DEFAULT_DECISIONS",
    "Decide",
    "Decided",
    "Decision",
    "DecisionCount",
    "DecisionOutcome",
    "DecisionReply",
    "DecisionRequest",
    "FULL_ID",
    "MAX_LISTED_TASKS",
    "MAX_OPERATOR_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_RESULT_BYTES",
    "MAX_TASK_LENGTH",
    "SNAPSHOT_INTERVAL",
    "SnapshotRequest",
    "TaskRef",
    "cancel_topic",
    "check_reply_topic",
    "checked_name",
    "checked_prefix",
    "checked_reason",
    "checked_text",
    "command_filter",
    "decide_topic",
    "decode_cancel_reply",
    "decode_cancel_request",
    "decode_decision_reply",
    "decode_decision_request",
    "decode_snapshot_request",
    "default_operator",
    "is_full",
    "new_request_id",
    "reply_filter",
    "reply_topic",
    "snapshot_request_topic",
]

# Where each name is defined: a name is imported from its module when first used (PEP 562),
# so that whoever needs one name does not pay for all of them (a command's start).
_HOMES = {
    "FULL_ID": "._asked",
    "MAX_OPERATOR_LENGTH": "._asked",
    "MAX_REASON_LENGTH": "._asked",
    "ControlError": "._asked",
    "checked_name": "._asked",
    "checked_prefix": "._asked",
    "checked_reason": "._asked",
    "checked_text": "._asked",
    "default_operator": "._asked",
    "is_full": "._asked",
    "new_request_id": "._asked",
    "MAX_LISTED_TASKS": "._commands",
    "CancelOutcome": "._commands",
    "CancelReply": "._commands",
    "CancelRequest": "._commands",
    "TaskRef": "._commands",
    "cancel_topic": "._commands",
    "check_reply_topic": "._commands",
    "command_filter": "._commands",
    "decode_cancel_reply": "._commands",
    "decode_cancel_request": "._commands",
    "reply_filter": "._commands",
    "reply_topic": "._commands",
    "DECISIONS": "._decisions",
    "DEFAULT_DECISIONS": "._decisions",
    "MAX_RESULT_BYTES": "._decisions",
    "MAX_TASK_LENGTH": "._decisions",
    "Decide": "._decisions",
    "Decided": "._decisions",
    "Decision": "._decisions",
    "DecisionCount": "._decisions",
    "DecisionOutcome": "._decisions",
    "DecisionReply": "._decisions",
    "DecisionRequest": "._decisions",
    "decide_topic": "._decisions",
    "decode_decision_reply": "._decisions",
    "decode_decision_request": "._decisions",
    "Cancel": "._requests",
    "Limit": "._requests",
    "Pause": "._requests",
    "Resume": "._requests",
    "Start": "._requests",
    "read_request": "._requests",
    "MIN_RERUN_PREFIX": "._start_request",
    "SNAPSHOT_INTERVAL": "._snapshots",
    "SnapshotRequest": "._snapshots",
    "decode_snapshot_request": "._snapshots",
    "snapshot_request_topic": "._snapshots",
}


def __getattr__(name: str) -> Any:
    """Each public name, from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __package__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, those not imported yet included."""
    return sorted({*globals(), *__all__})
