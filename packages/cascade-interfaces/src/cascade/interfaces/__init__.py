"""Cascade's shared contracts: the Connector protocol, wire-protocol schemas and topic helpers.

See PROTOCOL.md for the topics and payloads these names implement. Building
blocks for writing a connector are in :mod:`cascade.interfaces.connector_kit`;
an in-memory connector to test with is in :mod:`cascade.interfaces.testing`.
"""

from ._codec import Payload
from ._connector import (
    Connector,
    ConnectorStats,
    Message,
    MessageCallback,
    SubscriptionHandle,
    SyncCallback,
    SyncPhase,
)
from ._errors import (
    ConnectError,
    ConnectorError,
    FlushTimeoutError,
    InvalidIdError,
    InvalidMessageError,
    InvalidTopicError,
)
from ._schemas import (
    MAX_CONTROL_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    Body,
    Constraint,
    ConstraintType,
    Envelope,
    Heartbeat,
    LifecycleEvent,
    LifecycleName,
    RunStatus,
    StatusMessage,
    TaskState,
    TaskStateEvent,
    decode_constraint,
    decode_envelope,
    decode_status,
    validate_scope,
)
from ._topics import (
    DEFAULT_PREFIX,
    constraint_topic,
    constraints_filter,
    events_topic,
    heartbeat_topic,
    status_filter,
    status_topic,
    telemetry_filter,
    topic_matches,
)

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_CONTROL_PAYLOAD_BYTES",
    "PROTOCOL_VERSION",
    "Body",
    "ConnectError",
    "Connector",
    "ConnectorError",
    "ConnectorStats",
    "Constraint",
    "ConstraintType",
    "Envelope",
    "FlushTimeoutError",
    "Heartbeat",
    "InvalidIdError",
    "InvalidMessageError",
    "InvalidTopicError",
    "LifecycleEvent",
    "LifecycleName",
    "Message",
    "MessageCallback",
    "Payload",
    "RunStatus",
    "StatusMessage",
    "SubscriptionHandle",
    "SyncCallback",
    "SyncPhase",
    "TaskState",
    "TaskStateEvent",
    "constraint_topic",
    "constraints_filter",
    "decode_constraint",
    "decode_envelope",
    "decode_status",
    "events_topic",
    "heartbeat_topic",
    "status_filter",
    "status_topic",
    "telemetry_filter",
    "topic_matches",
    "validate_scope",
]
