"""The ``Connector`` protocol: what the runtime and the CLI need from a broker connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import msgspec
from typing_extensions import Self

from ._codec import Payload

__all__ = [
    "BrokerCapabilities",
    "Connector",
    "ConnectorStats",
    "Message",
    "MessageCallback",
    "SubscriptionHandle",
    "SyncCallback",
    "SyncPhase",
]


class Message(msgspec.Struct, frozen=True):
    """A message delivered to a subscription.

    ``payload`` is the decoded JSON object (``{}`` for an empty payload, which
    on a retained topic means "cleared"); ``raw`` is the bytes as received.
    """

    # A struct, not a dataclass: one is made for every message a reader receives, and a frozen
    # dataclass's __init__ costs ~1 µs more of it (a fleet's reader takes thousands a second).

    topic: str
    payload: dict[str, Any]
    raw: bytes = b""
    qos: int = 0
    retain: bool = False


MessageCallback: TypeAlias = Callable[[Message], "Awaitable[None] | None"]
"""A subscription's callback: a plain function or a coroutine function taking a :class:`Message`."""

SyncPhase: TypeAlias = Literal["begin", "end"]
"""Where a subscription is in taking the broker's retained messages: see :data:`SyncCallback`."""

SyncCallback: TypeAlias = Callable[[SyncPhase], None]
"""A subscription's ``on_sync``: told when the broker's retained snapshot for it begins and ends.

``"begin"``: the subscription is being made (or remade after a lost
connection) at the broker; every message delivered from now on comes from
the new connection. ``"end"``: the broker's retained messages for it have
all been delivered. What was retained before ``"begin"`` and not delivered
again by ``"end"`` is no longer retained at the broker. ``"end"`` may come
without a ``"begin"`` (a subscription made while a (re)connection was
already syncing), and a ``"begin"`` may be followed by another ``"begin"``
(the connection was lost again before the snapshot ended).
"""


@dataclass(slots=True)
class ConnectorStats:
    """Counters a connector keeps, for the engine's heartbeat and the CLI.

    ``published``: messages the broker accepted (for MQTT: acknowledged,
    or at QoS 0 confirmed by its answer to a later packet). ``dropped``:
    messages discarded unsent, or unconfirmed (buffer full, or published
    while not started). ``resent``: messages sent again after a lost
    connection (at-least-once: readers may see these twice).
    ``rejected``: received payloads that were not a JSON object.
    ``received``: messages delivered to at least one callback.
    ``callback_errors``: callbacks that raised. ``reconnects``: successful
    reconnections after a loss. ``buffered``: messages waiting to be sent now.
    ``refused``: messages the broker said it refused (not in ``published``);
    only brokers that say so count here (MQTT 5 PUBACK reason codes).
    ``shed``: received QoS 0 messages discarded unread, oldest first, because
    the callbacks fell too far behind what the broker delivered (the reader's
    bounded buffer was full); readers see them as gaps in the telemetry's ``seq``.
    """

    published: int = 0
    dropped: int = 0
    rejected: int = 0
    received: int = 0
    callback_errors: int = 0
    reconnects: int = 0
    buffered: int = 0
    refused: int = 0
    resent: int = 0
    shed: int = 0


@dataclass(frozen=True, slots=True)
class BrokerCapabilities:
    """What a connector has learned the broker does with what Cascade relies on.

    ``None`` means not known yet: not connected, or the check has not come back.

    ``retained_to_wildcards``: the broker sends a new subscription the retained
    messages of every topic its filter matches, wildcards included, as MQTT
    requires (3.1.1 §3.3.1.3, 5 §3.3.1.3). RabbitMQ 3.x's MQTT plugin sends
    them only to a subscription of that exact topic. Without it, an engine
    does not see the constraints set before it started (only those published
    while it runs), and ``cascade status`` cannot list the engines and
    constraints the broker retains.
    """

    retained_to_wildcards: bool | None = None


@runtime_checkable
class SubscriptionHandle(Protocol):
    """What :meth:`Connector.subscribe` returns; :meth:`unsubscribe` ends the subscription."""

    @property
    def topic_filter(self) -> str:
        """The filter this subscription was made with."""
        ...

    async def unsubscribe(self) -> None:
        """Stop delivering messages to the callback. Idempotent; never waits on the broker."""
        ...


@runtime_checkable
class Connector(Protocol):
    """A connection to a message broker, as Cascade uses it.

    Contract every implementation keeps:

    - ``connect()`` and ``disconnect()`` are idempotent, and ``async with``
      calls them. ``disconnect()`` always releases everything and never hangs.
    - ``connect()`` waits at most the connector's connect timeout. By default
      it never raises for network faults: if the broker is unreachable it
      returns and keeps trying in the background, so a workflow is never
      held up. ``connect(require=True)`` is for callers that need the broker
      (a CLI): it raises :class:`~cascade.interfaces.ConnectError` naming the
      host, port and cause instead, and leaves the connector disconnected.
    - ``publish()`` never waits on the network and never raises for network
      faults: it hands the message to the connector, which delivers it when
      it can (or counts it in ``stats.dropped``). Mappings and schema objects
      are sent as JSON; an empty payload sent retained clears the topic.
    - ``subscribe()`` returns once the subscription is active and the
      retained messages matching it have been passed to ``callback``, so a
      caller can act on retained state without sleeping. With ``on_sync``,
      the subscriber is also told when each (re)subscription's retained
      snapshot begins and ends (:data:`SyncCallback`), so it can forget what
      the broker no longer retains after a reconnection. Messages are
      delivered to every subscription whose filter matches, in order per
      subscription; a callback that raises is logged and isolated.
    - ``flush()`` waits until everything published so far has been accepted
      by the broker, and raises :class:`~cascade.interfaces.ConnectorError`
      if that does not happen within ``timeout`` seconds. It is for callers
      that need confirmation (a CLI command), never for the workflow path.
    - The connector announces its own presence under
      ``{topic_prefix}/status/{source_id}`` (birth, will, graceful offline).
    """

    @property
    def source_id(self) -> str:
        """This process's id in the protocol (``<hostname>-<pid>`` by default)."""
        ...

    @property
    def topic_prefix(self) -> str:
        """The first topic level(s) of every Cascade topic, ``cascade`` by default."""
        ...

    @property
    def is_connected(self) -> bool:
        """Whether the broker connection is up right now."""
        ...

    @property
    def stats(self) -> ConnectorStats:
        """The connector's counters."""
        ...

    @property
    def capabilities(self) -> BrokerCapabilities:
        """What the broker was found to do; known once a ``subscribe()`` has returned connected."""
        ...

    async def connect(self, *, require: bool = False) -> None:
        """Open the connection and announce presence; see the class docs for ``require``."""
        ...

    async def disconnect(self) -> None:
        """Flush briefly, announce a graceful offline, and close. Idempotent, bounded."""
        ...

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        """Hand a message to the connector for delivery; returns without waiting on the network."""
        ...

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> SubscriptionHandle:
        """Deliver messages matching ``topic_filter`` (retained ones first) to ``callback``."""
        ...

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until the broker has accepted everything published so far."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
