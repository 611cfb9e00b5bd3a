"""What is sent to the engine running a run, and its answers: a cancel, a decision on a held
task, a request for the run's state (docs/protocol.md: "Commands (cancel)", "Decisions on a
held task", "Snapshots").

An engine listens on :func:`command_filter` and :func:`snapshot_request_topic`, decodes each
request strictly, and answers a cancel or a decision on :func:`reply_topic`; the writers of
these requests are ``cascade.control``'s.
"""

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
    new_request_id,
    reply_filter,
    reply_topic,
)
from ._decisions import (
    DECISIONS,
    DEFAULT_DECISIONS,
    MAX_RESULT_BYTES,
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
from ._snapshots import (
    SNAPSHOT_INTERVAL,
    SnapshotRequest,
    decode_snapshot_request,
    snapshot_request_topic,
)

__all__ = [
    "CancelOutcome",
    "CancelReply",
    "CancelRequest",
    "DECISIONS",
    "DEFAULT_DECISIONS",
    "Decided",
    "DecisionCount",
    "Decision",
    "DecisionOutcome",
    "DecisionReply",
    "DecisionRequest",
    "MAX_LISTED_TASKS",
    "MAX_RESULT_BYTES",
    "SNAPSHOT_INTERVAL",
    "SnapshotRequest",
    "TaskRef",
    "cancel_topic",
    "check_reply_topic",
    "command_filter",
    "decide_topic",
    "decode_cancel_reply",
    "decode_cancel_request",
    "decode_decision_reply",
    "decode_decision_request",
    "decode_snapshot_request",
    "new_request_id",
    "reply_filter",
    "reply_topic",
    "snapshot_request_topic",
]
