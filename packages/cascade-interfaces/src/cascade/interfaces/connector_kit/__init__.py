"""Building blocks for writing a connector (and for the other Cascade packages).

Workflow authors and telemetry readers never need this module: what they use
is in :mod:`cascade.interfaces`. A :class:`~cascade.interfaces.Connector`
implementation uses these parts to behave exactly like the others: the same
JSON codec, the same routing of received messages to subscriptions, the same
presence rule on its own status topic, the same id and topic checks, and the
same rate-limited warnings; and inheriting :class:`BrokerDifferences`, the same
``Connector`` methods where brokers differ (the constraints index, the roll call,
the shared-subscription probe). Every Cascade package (the MQTT connector, the
runtime, the CLI) builds on them, so they are as stable as
:mod:`cascade.interfaces`: a name changes only with a deprecation.

``bounded`` is ``asyncio.timeout`` (its backport on 3.10), and ``event_set``
waits for an event for at most so long: use them, not ``asyncio.wait_for``,
which before Python 3.12 drops a cancellation that arrives just as the
awaited operation completes.
"""

from .._codec import decode_payload, encode_payload
from .._dispatch import Dispatcher, Subscription
from .._identity import (
    default_org_id,
    default_project_id,
    default_source_id,
    default_sourced_topics,
)
from .._ids import MAX_ID_BYTES, validate_id
from .._presence import PresenceGuard, PresenceVerdict
from .._ratelimit import RateLimitedLogger
from .._timeout import bounded, event_set
from .._topics import levels_match, validate_filter, validate_prefix, validate_topic
from ._broker_differences import BrokerDifferences, delivers_to_shared

__all__ = [
    "MAX_ID_BYTES",
    "BrokerDifferences",
    "Dispatcher",
    "PresenceGuard",
    "PresenceVerdict",
    "RateLimitedLogger",
    "Subscription",
    "bounded",
    "decode_payload",
    "default_org_id",
    "default_project_id",
    "default_source_id",
    "default_sourced_topics",
    "delivers_to_shared",
    "encode_payload",
    "event_set",
    "levels_match",
    "validate_filter",
    "validate_id",
    "validate_prefix",
    "validate_topic",
]
