"""Cascade's protocol: the Connector protocol, the wire's schemas, topics and ids, and the errors.

What a connector or an engine needs, and nothing a reader alone does (the reader model,
steering and metrics are the ``cascade-client`` package's: ``cascade.reader``,
``cascade.control``, ``cascade.metrics``). See docs/protocol.md for the topics and payloads
these names implement. The protocol's other parts are modules of their own:
:mod:`~cascade.interfaces.commands` (a cancel, a decision, a snapshot request, and their
answers), :mod:`~cascade.interfaces.serving` (served workflows and starting them),
:mod:`~cascade.interfaces.logs` (task logs), :mod:`~cascade.interfaces.summaries` (engines'
summaries), :mod:`~cascade.interfaces.notes` (what a writer of constraints leaves said).
Building blocks for writing a connector, the identity defaults, and an in-memory connector to
test with, are the ``cascade-connector-kit`` package's (:mod:`cascade.connector_kit`,
:mod:`cascade.connector_kit.testing`). What the packages that implement the protocol share of it
beyond this (the bounds, the engine's side of the commands, its byte templates, ...) is
:mod:`~cascade.interfaces.wire`, versioned with the family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._codec import (
        Payload,
        decode_payload,
        encode_payload,
    )
    from ._connector import (
        BrokerCapabilities,
        Connector,
        ConnectorStats,
        ConstraintsSubscription,
        Message,
        MessageCallback,
        SubscriptionHandle,
        SyncCallback,
        SyncPhase,
    )
    from ._constraint import (
        Constraint,
        decode_constraint,
        validate_scope,
    )
    from ._constraint_topic import (
        ConstraintTopicError,
        TopicKey,
        constraint_from_topic,
        constraint_topic_key,
    )
    from ._errors import (
        CascadeError,
        ConnectError,
        ConnectorError,
        FlushTimeoutError,
        InvalidIdError,
        InvalidMessageError,
        InvalidTopicError,
    )
    from ._holds import (
        Hold,
    )
    from ._ids import (
        validate_id,
    )
    from ._rules import (
        canonical_rate,
        expiry_after,
        parse_rate,
    )
    from ._schemas import (
        PROTOCOL_VERSION,
        Envelope,
        Heartbeat,
        LifecycleEvent,
        RunSnapshot,
        SnapshotTask,
        StatusMessage,
        TaskStateEvent,
        decode_envelope,
        decode_status,
    )
    from ._snapshots import (
        snapshot_topic,
    )
    from ._topics import (
        DEFAULT_PREFIX,
        constraint_topic,
        constraints_filter,
        decode_level,
        encode_level,
        events_topic,
        heartbeat_topic,
        rollcall_topic,
        same_place,
        same_source,
        split_run_topic,
        status_filter,
        status_topic,
        telemetry_filter,
        topic_matches,
        validate_filter,
        validate_prefix,
        validate_topic,
    )

__all__, __getattr__, __dir__ = lazy_exports(__name__)
