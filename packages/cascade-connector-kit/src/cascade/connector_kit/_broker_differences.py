"""Where brokers differ, absorbed by the connector: the ``Connector`` methods that depend on what
the broker does, written once over a connector's core methods and its ``capabilities``.

Two differences matter to Cascade (docs/brokers.md has the measurements):

- a broker that sends retained messages only to subscriptions of their exact topic
  (RabbitMQ 3.x's MQTT plugin) sends a wildcard subscription none: the retained constraints
  are then read through the constraints index (``_constraints_index.py``), which writers
  keep beside them (``_index_writer.py``), and the retained statuses, summaries and
  announcements are asked for again by a roll call (``{prefix}/rollcall``);
- a broker may take a shared subscription's ``$share/{group}/...`` filter literally (RabbitMQ
  3.x, amqtt), so only trying one tells whether it shares.

The runtime, the readers and the writers call these methods and never look at the broker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from cascade.interfaces import (
    Connector,
    ConstraintsSubscription,
    Message,
    MessageCallback,
    Payload,
    SubscriptionHandle,
    SyncCallback,
    SyncPhase,
    TopicKey,
    constraints_filter,
    rollcall_topic,
)

from ._constraints_index import read_index, read_indexed_constraints
from ._index_writer import update_constraints_index

__all__ = ["BrokerDifferences", "delivers_to_shared"]

_log = logging.getLogger("cascade.connector_kit")


class BrokerDifferences:
    """The :class:`~cascade.interfaces.Connector` methods where brokers differ, for a connector
    class to inherit: :meth:`subscribe_constraints`, :meth:`index_constraints`,
    :meth:`call_roll`, :meth:`answer_rollcalls`, :meth:`shares_subscriptions` and
    :meth:`subscribe_shared`.

    They use only the connector's own ``subscribe``, ``publish``, ``flush``, ``topic_prefix``,
    ``source_id``, ``is_connected`` and ``capabilities`` (what its first connection found:
    ``retained_to_wildcards``), so a connector that keeps that property gets the same
    behaviour on every broker as Cascade's connectors.
    """

    async def subscribe_constraints(
        self: Connector,
        callback: Callable[[Message], None],
        *,
        on_sync: SyncCallback | None = None,
        wanted: Callable[[TopicKey], bool] | None = None,
        on_read_error: Callable[[Exception], None] | None = None,
    ) -> ConstraintsSubscription:
        """See :meth:`cascade.interfaces.Connector.subscribe_constraints`."""
        subscription = _ConstraintSubscription(self, callback, on_sync, wanted, on_read_error)
        return await subscription.open()

    async def index_constraints(
        self: Connector,
        *,
        put: Mapping[str, Payload] | None = None,
        remove: Collection[str] = (),
        timeout: float,
        settle: float | None = None,
    ) -> bool:
        """See :meth:`cascade.interfaces.Connector.index_constraints`."""
        if not put and not remove:
            return False
        if self.capabilities.retained_to_wildcards is None:
            await read_index(self, ())  # its first subscription tells the connector
        if self.capabilities.retained_to_wildcards is True:
            return False  # unknown still (the link dropped meanwhile): an index costs nothing
        return await update_constraints_index(
            self, put=put, remove=remove, timeout=timeout, settle=settle
        )

    async def call_roll(self: Connector) -> bool:
        """See :meth:`cascade.interfaces.Connector.call_roll`."""
        if self.capabilities.retained_to_wildcards is not False:
            return False
        await self.publish(rollcall_topic(self.topic_prefix), {"rollcall": 1}, qos=1)
        return True

    async def answer_rollcalls(self: Connector, callback: MessageCallback) -> SubscriptionHandle:
        """See :meth:`cascade.interfaces.Connector.answer_rollcalls`."""
        topic = rollcall_topic(self.topic_prefix)
        if self.capabilities.retained_to_wildcards is True:
            return _NoSubscription(topic)
        connector = self

        def called(message: Message) -> Awaitable[None] | None:
            if connector.capabilities.retained_to_wildcards is False:
                return callback(message)
            return None

        return await self.subscribe(topic, called)

    async def shares_subscriptions(self: Connector, topic: str, *, timeout: float) -> bool:
        """See :meth:`cascade.interfaces.Connector.shares_subscriptions`."""
        if self.capabilities.retained_to_wildcards is False:
            return False  # RabbitMQ 3.x: none, and a ``$share`` filter it denies closes the link
        return await delivers_to_shared(self, topic, timeout)

    async def subscribe_shared(
        self: Connector,
        group: str,
        topic_filters: Sequence[str],
        callback: MessageCallback,
        *,
        probe: str,
        timeout: float,
        plain: bool = False,
        subscribed: Sequence[SubscriptionHandle] = (),
    ) -> list[SubscriptionHandle]:
        """See :meth:`cascade.interfaces.Connector.subscribe_shared`."""
        try:
            shares = await self.shares_subscriptions(probe, timeout=timeout)
        except Exception as exc:  # a broker that does not answer, a link lost on the way
            _log.warning(
                "could not try a shared subscription on %s (taken as none): %s", probe, exc
            )
            shares = False
        if shares:
            if subscribed:
                return list(subscribed)
            return [
                await self.subscribe(f"$share/{group}/{topic_filter}", callback)
                for topic_filter in topic_filters
            ]
        handles = (
            [await self.subscribe(topic_filter, callback) for topic_filter in topic_filters]
            if plain
            else []
        )
        for handle in subscribed:  # after the fallback's own: nothing is missed between them
            await handle.unsubscribe()
        return handles


class _NoSubscription:
    """What :meth:`BrokerDifferences.answer_rollcalls` returns where no roll call is called."""

    def __init__(self, topic_filter: str) -> None:
        self._topic_filter = topic_filter

    @property
    def topic_filter(self) -> str:
        return self._topic_filter

    async def unsubscribe(self) -> None:
        return None


async def delivers_to_shared(connector: Connector, topic: str, timeout: float) -> bool:
    """Whether the broker delivers through a shared subscription (``connector`` connected):
    subscribe ``$share/{a group of its own}/{topic}``, publish one message there at QoS 1,
    wait for the broker's acknowledgement (it has routed the message by then) and for one
    more subscription's round trip, of ``topic`` itself (whatever the broker queued for this
    client before it has been dispatched): the message came back through the shared
    subscription, or it never will.

    MQTT 5 brokers may say so in their CONNACK, MQTT 3.1.1 ones cannot, and some take a
    ``$share/...`` filter as a plain one that matches nothing (amqtt, RabbitMQ 3.x): only
    trying tells. ``topic`` is one this client may publish and subscribe to. Raises
    :class:`~cascade.interfaces.ConnectorError` when the broker does not acknowledge the
    probe within ``timeout`` seconds.
    """
    nonce = uuid.uuid4().hex
    arrived = asyncio.Event()

    def on_probe(message: Message) -> None:
        if message.payload.get("probe") == nonce:
            arrived.set()

    handle = await connector.subscribe(f"$share/probe-{nonce[:12]}/{topic}", on_probe)
    try:
        await connector.publish(topic, {"probe": nonce}, qos=1)
        await connector.flush(timeout)
        barrier = await connector.subscribe(topic, _ignore)
        await barrier.unsubscribe()
    finally:
        await handle.unsubscribe()
    return arrived.is_set()


def _ignore(message: Message) -> None:
    return None


def _beside_exact_reads(
    connector: Connector, callback: Callable[[Message], None]
) -> Callable[[Message], None]:
    """``callback`` for a ``{prefix}/constraints/#`` subscription whose retained messages are
    read exactly (:func:`read_indexed_constraints`): where the broker sends retained messages
    to exact subscriptions only, a retained copy that reaches the wildcard was brought by an
    exact read, which hands it over itself; it is skipped here, so that each message is
    handled once."""

    def live(message: Message) -> None:
        if message.retain and connector.capabilities.retained_to_wildcards is False:
            return
        callback(message)

    return live


class _ConstraintSubscription:
    """One subscription to the constraints and its reads of the index."""

    def __init__(
        self,
        connector: Connector,
        callback: Callable[[Message], None],
        on_sync: SyncCallback | None,
        wanted: Callable[[TopicKey], bool] | None,
        on_read_error: Callable[[Exception], None] | None,
    ) -> None:
        self._connector = connector
        self._callback = callback
        self._on_sync = on_sync
        self._wanted = wanted
        self._on_read_error = on_read_error
        self._read: asyncio.Task[None] | None = None
        self._first: Exception | None = None  # the first read's error, raised by open()
        self._opening = True
        self._handle: SubscriptionHandle | None = None

    @property
    def topic_filter(self) -> str:
        """The filter this subscription was made with."""
        assert self._handle is not None
        return self._handle.topic_filter

    @property
    def indexed(self) -> bool:
        """Whether the retained constraints are read through the constraints index."""
        return self._connector.capabilities.retained_to_wildcards is False

    async def open(self) -> ConstraintsSubscription:
        connector = self._connector
        self._handle = handle = await connector.subscribe(
            constraints_filter(connector.topic_prefix),
            _beside_exact_reads(connector, self._callback),
            on_sync=self._synced,
        )
        try:
            if self._read is None and connector.is_connected and self.indexed:
                self._start_read()  # no snapshot ended while subscribing: read all the same
            if self._read is not None:
                await asyncio.wait({self._read})
        except BaseException:
            await self.unsubscribe()
            raise
        finally:
            self._opening = False
        if self._first is not None:
            await handle.unsubscribe()
            raise self._first
        return self

    async def unsubscribe(self) -> None:
        """Cut short a read under way, and end the subscription. Idempotent."""
        self._stop_read()
        if self._handle is not None:
            await self._handle.unsubscribe()

    def _synced(self, phase: SyncPhase) -> None:
        self._stop_read()
        if phase == "begin" or not self.indexed:
            if self._on_sync is not None:
                self._on_sync(phase)
            return
        self._start_read()

    def _start_read(self) -> None:
        self._read = asyncio.ensure_future(self._read_exactly(first=self._opening))

    def _stop_read(self) -> None:
        read = self._read
        if read is not None and not read.done():
            read.cancel()
        self._read = None

    async def _read_exactly(self, *, first: bool) -> None:
        """Read the retained constraints through their exact topics, then end the snapshot."""
        try:
            await read_indexed_constraints(self._connector, self._callback, wanted=self._wanted)
        except Exception as exc:
            if self._on_read_error is not None:
                self._on_read_error(exc)
            elif first:
                self._first = exc
            else:
                _log.warning(
                    "could not read the constraints index after a reconnection", exc_info=True
                )
        if self._on_sync is not None:
            self._on_sync("end")
