"""Served workflows: an engine's announcement of what it serves, a request to start one (or to
rerun a run) and its answer, and their topics (docs/protocol.md, "Served workflows"); their
schedules and the claims by which a schedule's slot fires once (docs/schedules.md).
"""

from ._schedules import (
    ServedSchedule,
)
from ._serving import (
    PlanStep,
    RunOrigin,
    ServedAnnouncement,
    ServedWorkflow,
    StartReply,
    StartRequest,
    WorkflowParam,
    addressed_start_topic,
    decode_served,
    decode_start_reply,
    served_filter,
    served_topic,
    start_topic,
)

__all__ = [
    "ServedSchedule",
    "PlanStep",
    "RunOrigin",
    "ServedAnnouncement",
    "ServedWorkflow",
    "StartReply",
    "StartRequest",
    "WorkflowParam",
    "addressed_start_topic",
    "decode_served",
    "decode_start_reply",
    "served_filter",
    "served_topic",
    "start_topic",
]
