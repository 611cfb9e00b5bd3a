"""Cascade's shared contracts: the Connector protocol, wire-protocol schemas and topic helpers.

See PROTOCOL.md for the topics and payloads these names implement. Building
blocks for writing a connector are in :mod:`cascade.interfaces.connector_kit`;
an in-memory connector to test with is in :mod:`cascade.interfaces.testing`.
"""

from ._codec import Payload
from ._connector import (
    BrokerCapabilities,
    Connector,
    ConnectorStats,
    Message,
    MessageCallback,
    SubscriptionHandle,
    SyncCallback,
    SyncPhase,
)
from ._constraints_index import (
    MAX_INDEXED_TOPICS,
    beside_exact_reads,
    constraints_index_topic,
    read_indexed_constraints,
)
from ._errors import (
    ConnectError,
    ConnectorError,
    FlushTimeoutError,
    InvalidIdError,
    InvalidMessageError,
    InvalidTopicError,
)
from ._index_shards import INDEX_SHARDS, constraints_shard_topic
from ._index_writer import IndexNotHeldError, update_constraints_index
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
    rollcall_topic,
    status_filter,
    status_topic,
    telemetry_filter,
    topic_matches,
)

__all__ = [
    "BrokerCapabilities",
    "DEFAULT_PREFIX",
    "INDEX_SHARDS",
    "MAX_CONTROL_PAYLOAD_BYTES",
    "MAX_INDEXED_TOPICS",
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
    "IndexNotHeldError",
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
    "beside_exact_reads",
    "constraint_topic",
    "constraints_filter",
    "constraints_index_topic",
    "constraints_shard_topic",
    "decode_constraint",
    "decode_envelope",
    "decode_status",
    "events_topic",
    "heartbeat_topic",
    "read_indexed_constraints",
    "rollcall_topic",
    "status_filter",
    "status_topic",
    "telemetry_filter",
    "topic_matches",
    "update_constraints_index",
    "validate_scope",
]
