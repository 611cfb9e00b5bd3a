"""An in-process broker with MQTT semantics, and a connector on top of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Literal, NamedTuple

from typing_extensions import Self

from cascade.interfaces import (
    DEFAULT_PREFIX,
    BrokerCapabilities,
    ConnectorStats,
    Message,
    MessageCallback,
    Payload,
    StatusMessage,
    SyncCallback,
    encode_payload,
    rollcall_topic,
    status_topic,
    topic_matches,
    validate_id,
    validate_prefix,
    validate_topic,
)

from .._broker_differences import BrokerDifferences
from .._dispatch import Dispatcher, Subscription
from .._identity import default_source_id
from .._ratelimit import RateLimitedLogger

__all__ = ["InMemoryBroker", "InMemoryConnector"]

_log = logging.getLogger("cascade.connector_kit.testing")

_SHARE = "$share/"


def _shared_key(topic_filter: str) -> tuple[str, str]:
    """A shared subscription's group and the filter behind it."""
    group, _, behind = topic_filter[len(_SHARE) :].partition("/")
    return group, behind


class _Publish(NamedTuple):
    topic: str
    raw: bytes
    qos: int
    retain: bool


class InMemoryBroker:
    """A broker in one process: routing by ``topic_matches``, retained messages, wills.

    Like an MQTT broker it delivers a message once to each connected client
    with a matching filter, stores the last retained message per topic (an
    empty retained payload clears it), sends retained messages to new
    subscriptions, and publishes a client's will when it crashes. Every
    routed message is kept in :attr:`history` for assertions.

    ``retained_to_wildcards=False`` makes it behave as RabbitMQ 3.x's MQTT
    plugin does: a retained message goes only to a subscription of its exact
    topic, never through ``+`` or ``#`` (its connectors find so, as an MQTT connector does).

    A shared subscription (``$share/{group}/{filter}``) gets each message as mosquitto's do:
    one client of the group takes it (in turn), and it brings no retained message.
    ``shared_subscriptions=False`` makes it behave as RabbitMQ 3.x's MQTT plugin does: such
    a filter is taken as a plain one, whose first level is ``$share``, so nothing published
    by a client reaches it.
    """

    def __init__(
        self, *, retained_to_wildcards: bool = True, shared_subscriptions: bool = True
    ) -> None:
        self.retained_to_wildcards = retained_to_wildcards
        self.shared_subscriptions = shared_subscriptions
        self._turns: dict[tuple[str, str], int] = {}  # a shared group's next member, in turn
        self._retained: dict[str, _Publish] = {}
        self._clients: list[InMemoryConnector] = []
        self._wills: dict[int, _Publish] = {}
        self._sessions: dict[str, int] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.history: list[Message] = []

    def retained(self, topic: str) -> bytes | None:
        """The retained payload on ``topic``, or ``None``."""
        stored = self._retained.get(topic)
        return stored.raw if stored else None

    @property
    def retained_topics(self) -> list[str]:
        """Every topic that has a retained message."""
        return list(self._retained)

    async def idle(self) -> None:
        """Wait until every routed message has been dispatched to its callbacks."""
        await self._idle.wait()

    def _next_session(self, source_id: str) -> int:
        self._sessions[source_id] = self._sessions.get(source_id, 0) + 1
        return self._sessions[source_id]

    def _attach(self, client: InMemoryConnector, will: _Publish | None) -> None:
        self._clients.append(client)
        if will is not None:
            self._wills[id(client)] = will

    def _detach(self, client: InMemoryConnector, *, send_will: bool) -> None:
        if client in self._clients:
            self._clients.remove(client)
        will = self._wills.pop(id(client), None)
        if send_will and will is not None:
            self._route(will)

    def _route(self, message: _Publish) -> None:
        if message.retain:
            if message.raw:
                self._retained[message.topic] = message
            else:
                self._retained.pop(message.topic, None)
        self.history.append(Message(message.topic, {}, message.raw, message.qos, message.retain))
        live = message._replace(retain=False)  # MQTT 3.1.1 §3.3.1.3: live copies lose the flag
        groups: dict[tuple[str, str], list[InMemoryConnector]] = {}
        for client in self._clients:
            plain = False
            for topic_filter in client._broker_filters:
                if topic_filter.startswith(_SHARE):
                    if self.shared_subscriptions and topic_matches(topic_filter, message.topic):
                        group = groups.setdefault(_shared_key(topic_filter), [])
                        if client not in group:
                            group.append(client)
                elif topic_matches(topic_filter, message.topic):
                    plain = True
            if plain:
                self._enqueue(client, live)
        for key, members in groups.items():
            turn = self._turns.get(key, 0)
            self._turns[key] = turn + 1
            chosen = members[turn % len(members)]
            if not any(  # already has it through a plain subscription
                not f.startswith(_SHARE) and topic_matches(f, message.topic)
                for f in chosen._broker_filters
            ):
                self._enqueue(chosen, live)

    def _subscribe(self, client: InMemoryConnector, topic_filter: str) -> None:
        client._broker_filters.add(topic_filter)
        if topic_filter.startswith(_SHARE):
            return  # MQTT 5 §4.8.2: a shared subscription gets no retained message
        if not self.retained_to_wildcards and ("+" in topic_filter or "#" in topic_filter):
            return
        for stored in list(self._retained.values()):
            if topic_matches(topic_filter, stored.topic):
                self._enqueue(client, stored)

    def _enqueue(self, client: InMemoryConnector, item: _Publish | asyncio.Future[None]) -> None:
        self._pending += 1
        self._idle.clear()
        client._inbox.put_nowait(item)

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()


class InMemoryConnector(BrokerDifferences):
    """A :class:`~cascade.interfaces.Connector` on an :class:`InMemoryBroker`.

    It keeps the whole connector contract, presence included: a retained
    ``online`` birth with a session number on connect, a will that the broker
    publishes on :meth:`crash`, and a graceful ``offline`` on disconnect.
    Several connectors on one broker talk to each other as MQTT clients would.
    ``sourced_topics``: an engine on it publishes its runs' telemetry and log lines on the
    sourced layout (default off: the plain layout; no environment variable is read).
    """

    def __init__(
        self,
        broker: InMemoryBroker | None = None,
        *,
        source_id: str | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        presence: bool = True,
        sourced_topics: bool = False,
    ) -> None:
        self.broker = broker if broker is not None else InMemoryBroker()
        self._sourced_topics = sourced_topics
        source = validate_id(source_id, "source_id") if source_id else default_source_id()
        self._source_id = source
        self._prefix = validate_prefix(topic_prefix)
        self._presence = presence
        self._stats = ConnectorStats()
        self._dispatcher = Dispatcher(self._stats, self._unsubscribe_at_broker, _log)
        self._log = RateLimitedLogger(_log)
        self._inbox: asyncio.Queue[_Publish | asyncio.Future[None]] = asyncio.Queue()
        self._broker_filters: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._session = 0
        self._answering = False

    def _announce(self, message: Message) -> None:
        if self._task is not None:
            self._send(self._status("online"))

    @property
    def source_id(self) -> str:
        """This connector's source id."""
        return self._source_id

    @property
    def topic_prefix(self) -> str:
        """The prefix of the status topic."""
        return self._prefix

    @property
    def sourced_topics(self) -> bool:
        """Whether an engine on it publishes on the sourced layout (``sourced_topics=``)."""
        return self._sourced_topics

    @property
    def is_connected(self) -> bool:
        """Whether the connector is attached to its broker."""
        return self._task is not None

    @property
    def stats(self) -> ConnectorStats:
        """The connector's counters."""
        return self._stats

    @property
    def capabilities(self) -> BrokerCapabilities:
        """What the in-memory broker does (``InMemoryBroker(retained_to_wildcards=...)``)."""
        return BrokerCapabilities(retained_to_wildcards=self.broker.retained_to_wildcards)

    @property
    def session(self) -> int:
        """The presence session number of the current (or last) connection."""
        return self._session

    def _status(self, status: Literal["online", "offline"], reason: str | None = None) -> _Publish:
        message = StatusMessage.announce(status, self._source_id, self._session, reason)
        return _Publish(
            status_topic(self._source_id, self._prefix), encode_payload(message), 1, True
        )

    async def connect(self, *, require: bool = False) -> None:
        """Attach to the broker, resubscribe, and publish the retained ``online`` birth.

        The in-memory broker is always reachable, so ``require`` changes nothing.
        """
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._deliver(), name="cascade-inmemory-deliver")
        self._session = self.broker._next_session(self._source_id)
        self.broker._attach(self, self._status("offline") if self._presence else None)
        self._dispatcher.sync("begin")
        for topic_filter in self._dispatcher.filters:
            self.broker._subscribe(self, topic_filter)
        self._after_barrier(lambda: self._dispatcher.sync("end"))
        if self._presence:
            self._send(self._status("online"))
            if not self.broker.retained_to_wildcards and not self._answering:
                self._answering = True  # as MqttConnector does on such a broker: roll calls
                await self.subscribe(rollcall_topic(self._prefix), self._announce)

    def _after_barrier(self, action: Callable[[], None]) -> asyncio.Future[None]:
        """A future done once all queued for this connector was delivered; then ``action()``.

        ``action`` is skipped when the connection ends first (its queue is then discarded).
        """
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = self._task
        barrier.add_done_callback(lambda _: action() if self._task is task else None)
        self.broker._enqueue(self, barrier)
        return barrier

    async def disconnect(self) -> None:
        """Publish the graceful ``offline`` and detach. Idempotent."""
        if self._task is None:
            return
        if self._presence:
            self._send(self._status("offline", reason="shutdown"))
        await self._close(send_will=False)

    async def crash(self) -> None:
        """Drop the connection as a dying process would: the broker publishes the will."""
        if self._task is not None:
            await self._close(send_will=True)

    async def _close(self, *, send_will: bool) -> None:
        self.broker._detach(self, send_will=send_will)
        self._broker_filters.clear()
        task, self._task = self._task, None
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, asyncio.Future) and not item.done():
                item.set_result(None)
            self.broker._done()

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        """Route the message through the broker; dropped and counted when not connected."""
        validate_topic(topic)
        raw = encode_payload(payload)
        if self._task is None:
            self._stats.dropped += 1
            self._log.warning("not-connected", "publish to %r before connect(): dropped", topic)
            return
        self._send(_Publish(topic, raw, qos, retain))

    def _send(self, message: _Publish) -> None:
        self.broker._route(message)
        self._stats.published += 1

    async def subscribe(
        self,
        topic_filter: str,
        callback: MessageCallback,
        *,
        on_sync: SyncCallback | None = None,
    ) -> Subscription:
        """Subscribe; returns after the retained messages for the filter reached ``callback``."""
        subscription = self._dispatcher.add(topic_filter, callback, on_sync)
        if self._task is not None:
            subscription.sync("begin")
            self.broker._subscribe(self, topic_filter)
            barrier = self._after_barrier(lambda: subscription.sync("end"))
            if asyncio.current_task() is not self._task:
                await barrier
        return subscription

    async def _unsubscribe_at_broker(self, topic_filter: str) -> None:
        self._broker_filters.discard(topic_filter)

    async def flush(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the in-memory broker accepts every message at once."""

    async def _deliver(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                if isinstance(item, asyncio.Future):
                    if not item.done():
                        item.set_result(None)
                else:
                    await self._dispatcher.dispatch(*item)
            finally:
                self.broker._done()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()
