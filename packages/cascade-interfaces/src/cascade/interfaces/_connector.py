"""The ``Connector`` protocol: what the runtime and the CLI need from a broker connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

import msgspec
from typing_extensions import Self

from ._codec import Payload

if TYPE_CHECKING:
    from ._constraint_topic import TopicKey

__all__ = [
    "BrokerCapabilities",
    "Connector",
    "ConnectorStats",
    "ConstraintsSubscription",
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
class ConstraintsSubscription(SubscriptionHandle, Protocol):
    """What :meth:`Connector.subscribe_constraints` returns."""

    @property
    def indexed(self) -> bool:
        """Whether the retained constraints are read through the constraints index (the broker
        sends retained messages to exact subscriptions only): those retained by a tool that
        does not keep the index are then missed."""
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
      caller can act on retained state without sleeping; connected (and the
      filter granted), also every message the broker sent the connector
      before it has been passed to its callbacks (one ordered delivery), so a
      subscription made again waits for what is on its way. With ``on_sync``,
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
    - Where brokers differ (retained messages sent to exact subscriptions only, shared
      subscriptions taken literally: docs/brokers.md), the connector absorbs it behind one
      method per need: :meth:`subscribe_constraints` and :meth:`index_constraints` (the
      retained constraints, through the constraints index where the broker needs it),
      :meth:`call_roll` and :meth:`answer_rollcalls` (the retained statuses, summaries and
      announcements, asked for again where the broker needs it), and
      :meth:`shares_subscriptions` and :meth:`subscribe_shared` (a shared subscription, or
      the one fallback where the broker has none). Callers never look at the broker;
      :class:`~cascade.connector_kit.BrokerDifferences` implements them over the
      methods above and :attr:`capabilities`.
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
    def sourced_topics(self) -> bool:
        """Whether this connector's source publishes its runs' telemetry and log lines on the
        sourced layout (``.../{kind}/{source}``, ``.../{run_id}/{source}``: the last level
        is :attr:`source_id`, which a broker ACL binds to the login; docs/protocol.md, "The
        sourced layout") rather than the plain one. The engine asks it as each run starts;
        readers read both layouts whatever their connector says."""
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

    async def subscribe_constraints(
        self,
        callback: Callable[[Message], None],
        *,
        on_sync: SyncCallback | None = None,
        wanted: Callable[[TopicKey], bool] | None = None,
        on_read_error: Callable[[Exception], None] | None = None,
    ) -> ConstraintsSubscription:
        """Subscribe ``callback`` to every constraint topic (``{prefix}/constraints/#``) and
        hand it the retained constraints, on any broker, now and after every reconnection.

        Where the broker sends retained messages only to subscriptions of their exact topic
        (RabbitMQ's MQTT plugin, for one), each snapshot of the wildcard subscription (which
        brings none) is followed by a read of the constraints index, with ``wanted`` (the
        scopes and types of the listed topics to read; all without it), each message handed
        over once; a new snapshot cuts short the read of the one before. ``on_sync`` is told
        where each snapshot begins and ends, its end once its read is done (failed or not;
        not when cut short).

        Returns once subscribed and the first snapshot is handed over, its read included. A
        read that fails is passed to ``on_read_error``; without it, the first one's error is
        raised (the subscription ended) and a later one's is logged. Cancelled meanwhile, the
        subscription is ended. The handle's ``unsubscribe()`` also cuts short a read under way.
        """
        ...

    async def index_constraints(
        self,
        *,
        put: Mapping[str, Payload] | None = None,
        remove: Collection[str] = (),
        timeout: float,
        settle: float | None = None,
    ) -> bool:
        """For writers of constraints, once they published them (``put``: topic → payload) or
        cleared them (``remove``): where the broker needs the constraints index, put them in it
        (see :mod:`cascade.connector_kit.constraints_index`; ``settle`` seconds of watching for
        concurrent writers, :data:`~cascade.connector_kit.constraints_index.SETTLE` unless given),
        and return ``True``; elsewhere do nothing (but the one read that tells which broker
        it is, when not known yet) and return ``False``.

        Raises :class:`~cascade.connector_kit.constraints_index.IndexNotHeldError` when the change
        is missing after :data:`~cascade.connector_kit.constraints_index.INDEX_ATTEMPTS` writes,
        and ``ValueError`` when a shard would hold more than
        :data:`~cascade.connector_kit.constraints_index.MAX_INDEXED_TOPICS` constraints (nothing
        is written).
        """
        ...

    async def call_roll(self) -> bool:
        """For readers, once subscribed to the statuses (summaries, announcements): where the
        broker sends them none of the retained ones, ask every source online to announce
        itself again (``{prefix}/rollcall``: the answers come to those subscriptions) and
        return ``True``; elsewhere do nothing and return ``False``. Nothing says when all
        have answered."""
        ...

    async def answer_rollcalls(self, callback: MessageCallback) -> SubscriptionHandle:
        """For publishers of a retained announcement readers find through a wildcard (an
        engine's summary, a served workflow's announcement): call ``callback`` on each roll
        call, where the broker needs one (elsewhere never). The connector answers for its own
        status itself."""
        ...

    async def shares_subscriptions(self, topic: str, *, timeout: float) -> bool:
        """Whether the broker delivers through a shared subscription (``$share/{group}/...``),
        tried on ``topic`` (one this client may publish and subscribe to; the connector
        connected). ``False`` without trying where the broker is known to have none. Raises
        :class:`~cascade.interfaces.ConnectorError` when the broker does not answer within
        ``timeout`` seconds."""
        ...

    async def subscribe_shared(
        self,
        group: str,
        topic_filters: Sequence[str],
        callback: MessageCallback,
        *,
        probe: str,
        timeout: float,
        plain: bool = False,
        subscribed: Sequence[SubscriptionHandle] = (),
    ) -> list[SubscriptionHandle]:
        """Subscribe ``callback`` to each of ``topic_filters`` through a shared subscription,
        ``$share/{group}/{filter}`` (the broker gives each message to one member of the
        group), where the broker delivers through one: tried once, on ``probe``, as
        :meth:`shares_subscriptions` does. ``subscribed``: the shared subscriptions the caller
        made already (before connecting, so that nothing is missed meanwhile), one a filter,
        returned as they are where the broker shares.

        Where it does not (a broker with none, one that takes the filter literally, one that
        does not answer within ``timeout`` seconds, a link lost on the way: logged), the
        fallback, the same for every caller: with ``plain``, each filter itself (every member
        then gets every message), else none; ``subscribed`` is unsubscribed after. Returns the
        subscriptions in force, one a filter or none. Never raises for what the broker does."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
