"""``FakeBroker`` and ``FakeLink``: the connector's unit tests, with no MQTT client underneath.

``MqttConnector(link=FakeBroker())`` makes a :class:`FakeLink` for each
connection attempt, as httpx's ``MockTransport`` stands in for the network:
the connector's supervisor, presence, sender and subscriptions run as they
do on a real connection, and the test sees what was sent, answers it, loses
the connection or delivers messages when it chooses. Nothing here imports
aiomqtt, paho or pytest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from cascade.interfaces import topic_matches

from .._link import Incoming, LinkError, LinkHooks, LinkSettings

__all__ = ["FakeBroker", "FakeLink", "Sent"]


@dataclass(frozen=True)
class Sent:
    """A message the connector handed to a link, with the id that settles it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    batched: bool = False
    """Whether it came in a batched write (the sender's fast path) rather than ``publish()``."""


class FakeBroker:
    """A broker behind fake links: ``MqttConnector(link=broker)`` (it is the link factory).

    It keeps retained messages across connections and routes what a link
    sends to the subscriptions of every link still up (under MQTT 5 one copy
    per matching filter, with that filter's subscription identifier, as
    mosquitto does). It never publishes a will. What it does is set here,
    before or during a test:

    - ``batches``: whether links offer the sender's batched writes (its fast path).
    - ``subscription_ids``: whether MQTT 5 links may use subscription identifiers.
    - ``retained_to_wildcards``: ``False`` sends retained messages only to
      subscriptions of their exact topic (as RabbitMQ 3.x does).
    - ``routes_late``: a retained message a link publishes also reaches the subscriptions
      that link makes next, live (retain flag clear), as if routed after their SUBSCRIBE
      (RabbitMQ 3.x's MQTT plugin routes publishes and makes subscriptions on two
      channels: under load a SUBSCRIBE sent behind a PUBLISH can be in place first).
    - ``auto_settle``: each new link settles what it is handed on the next
      loop turn (``False``: the test calls :meth:`FakeLink.settle`).
    - ``refuse``: filters whose SUBACK refuses them (0x80); nothing arrives on them.
    - ``hang_up_on``: filters on whose SUBSCRIBE the broker closes the connection
      unanswered (as RabbitMQ 3.x does for a filter its topic permissions deny).
    - ``poison``: payloads on which the broker drops the connection, unsent.
    - ``before_connack``: awaited by every :meth:`FakeLink.open` before it
      succeeds (hold, fail or cancel an attempt there).
    - ``before_disconnect``: awaited by a graceful :meth:`FakeLink.close` before
      its DISCONNECT counts (a slow write; a cancellation there loses it).
    """

    def __init__(
        self,
        *,
        batches: bool = True,
        subscription_ids: bool = True,
        retained_to_wildcards: bool = True,
        routes_late: bool = False,
        auto_settle: bool = True,
    ) -> None:
        self.batches = batches
        self.subscription_ids = subscription_ids
        self.retained_to_wildcards = retained_to_wildcards
        self.routes_late = routes_late
        self.auto_settle = auto_settle
        self.refuse: set[str] = set()
        self.hang_up_on: set[str] = set()
        self.poison: set[bytes] = set()
        self.before_connack: Callable[[FakeLink], Awaitable[None]] | None = None
        self.before_disconnect: Callable[[FakeLink], Awaitable[None]] | None = None
        self.links: list[FakeLink] = []
        """Every link made, oldest first (one per connection attempt)."""
        self.retained: dict[str, bytes] = {}
        self._failures: deque[BaseException] = deque()

    def __call__(self, settings: LinkSettings, hooks: LinkHooks) -> FakeLink:
        """Make the link of one connection attempt (the ``LinkFactory`` protocol)."""
        failure = self._failures.popleft() if self._failures else None
        link = FakeLink(self, settings, hooks, fails_with=failure)
        self.links.append(link)
        return link

    def check(self) -> None:
        """Fake links work everywhere."""

    @property
    def link(self) -> FakeLink:
        """The newest link."""
        if not self.links:
            raise LookupError("the connector has made no link yet")
        return self.links[-1]

    def fail_next(self, *errors: BaseException) -> None:
        """Make the next connection attempts raise these (``ConnectError`` and the like)."""
        self._failures.extend(errors)

    def route(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """A message published to the broker: kept if retained, delivered to every match."""
        if retain and payload:
            self.retained[topic] = payload
        elif retain:
            self.retained.pop(topic, None)
        for link in self.links:
            if link.connected():
                link.route(topic, payload, qos)


class FakeLink:
    """One pretend connection: records what the connector does, answers as a broker would.

    What the test reads: :attr:`settings` (will, identifier, TLS, options),
    :attr:`sent` (every message in order), :attr:`writes` (the same, one list
    per publish or batched write), :attr:`pending` (ids not yet settled),
    :attr:`filters`, :attr:`subscribes` (the filters of each SUBSCRIBE, in order),
    :attr:`subscribe_qos` (the QoS each SUBSCRIBE asked), :attr:`granted` (each filter's QoS),
    :attr:`subscription_numbers`, :attr:`unsubscribed`,
    :attr:`disconnects` (DISCONNECTs sent) and :attr:`closed`. What it does:
    :meth:`settle`, :meth:`settle_all`, :meth:`deliver`, :meth:`route`,
    :meth:`lose`.
    """

    def __init__(
        self,
        broker: FakeBroker,
        settings: LinkSettings,
        hooks: LinkHooks,
        *,
        fails_with: BaseException | None = None,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.auto_settle = broker.auto_settle
        self.sent: list[Sent] = []
        self.writes: list[list[Sent]] = []
        self.pending: dict[int, int] = {}
        """Message ids handed over and not yet settled, each with its QoS, in order."""
        self.filters: list[str] = []
        self.subscribes: list[list[str]] = []
        """The filters of every SUBSCRIBE, one list per packet, also those hung up on."""
        self.subscribe_qos: list[int] = []
        """The QoS each SUBSCRIBE asked for, one per entry of :attr:`subscribes`."""
        self.granted: dict[str, int] = {}
        """Each filter subscribed on this link, with the QoS it was subscribed at (the last)."""
        self.subscription_numbers: dict[str, int | None] = {}
        self.unsubscribed: list[str] = []
        self.disconnects = 0
        self.closed = False
        self._hooks = hooks
        self._failure = fails_with
        self._up = False
        self._last_id = 0
        self._incoming: deque[Incoming] = deque()
        self._unrouted: list[Sent] = []  # retained, before the next SUBSCRIBE (routes_late)
        self._waiter: asyncio.Future[None] | None = None
        self._gone: str | None = None  # why the connection ended, once it has

    # -- the Link protocol --------------------------------------------------------------

    @property
    def subscription_ids(self) -> bool:
        """MQTT 5 and a broker that has subscription identifiers."""
        return self.settings.mqtt5 and self.broker.subscription_ids

    @property
    def batches(self) -> bool:
        """As the broker's ``batches`` says."""
        return self.broker.batches

    async def open(self) -> None:
        """CONNACK at once, after the broker's ``before_connack``, unless made to fail."""
        if self.broker.before_connack is not None:
            await self.broker.before_connack(self)
        if self._failure is not None:
            raise self._failure
        self._up = True

    def connected(self) -> bool:
        """Whether the connection is up."""
        return self._up

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand one message over: recorded, routed, settled (automatically or by the test)."""
        if not self._up:
            return None
        mid = self.packet_id()
        self._hand_over([Sent(topic, payload, qos, retain, mid)])
        return mid

    def queue_qos0(self, packets: bytes) -> int:
        """Decode a batch of QoS 0 PUBLISH packets; one id settles the batch."""
        mid = self.packet_id()
        decoded = [(t, p, r) for t, p, r, _ in _decode(packets, self.settings.mqtt5)]
        self._hand_over([Sent(t, p, 0, r, mid, batched=True) for t, p, r in decoded])
        return mid

    def packet_id(self) -> int:
        """The next message id."""
        self._last_id = self._last_id % 65535 + 1
        return self._last_id

    def queue_qos1(self, packets: bytes, packet_ids: Sequence[int]) -> None:
        """Decode a batch of QoS 1 PUBLISH packets; each is settled by its own packet id."""
        decoded = _decode(packets, self.settings.mqtt5)
        if [i for *_, i in decoded] != list(packet_ids):
            raise AssertionError(f"packet ids {list(packet_ids)} do not match the packets")
        self._hand_over([Sent(t, p, 1, r, i, batched=True) for t, p, r, i in decoded])

    def backlog(self) -> int:
        """The QoS 1+ messages not yet settled."""
        return sum(1 for qos in self.pending.values() if qos)

    async def subscribe(self, filters: Sequence[tuple[str, int | None]], qos: int) -> list[object]:
        """Record the filters and the QoS asked, send their retained messages (at that QoS, at
        most 1), and grant (or refuse) each.

        A filter in the broker's ``hang_up_on`` ends the connection instead: ``LinkError``.
        """
        if not self._up:
            raise LinkError(self._gone or "not connected")
        broker = self.broker
        self.subscribes.append([f for f, _ in filters])
        self.subscribe_qos.append(qos)
        if any(f in broker.hang_up_on for f, _ in filters):
            self.lose("the broker closed the connection on a SUBSCRIBE")
            raise LinkError(self._gone or "not connected")
        for topic_filter, number in filters:
            if topic_filter in broker.refuse:
                continue  # not subscribed: nothing arrives on it, retained messages included
            self.filters.append(topic_filter)
            self.subscription_numbers[topic_filter] = number
            self.granted[topic_filter] = qos
            for late in self._unrouted:
                if topic_matches(topic_filter, late.topic):
                    self.deliver(late.topic, late.payload, min(qos, late.qos, 1))
            for topic, payload in list(broker.retained.items()):
                exact = topic == topic_filter
                if exact or (broker.retained_to_wildcards and topic_matches(topic_filter, topic)):
                    ids = (number,) if number is not None else ()
                    self.deliver(topic, payload, min(qos, 1), retain=True, subscription_ids=ids)
        self._unrouted.clear()
        return [0x80 if f in broker.refuse else min(qos, 1) for f, _ in filters]

    def unsubscribe(self, topic_filter: str) -> None:
        """Record the UNSUBSCRIBE; nothing more arrives for that filter."""
        self.unsubscribed.append(topic_filter)
        if topic_filter in self.filters:
            self.filters.remove(topic_filter)
        if topic_filter not in self.filters:
            self.granted.pop(topic_filter, None)

    async def messages(self) -> AsyncIterator[Incoming]:
        """What was delivered, in order; then LinkError once the connection is gone."""
        loop = asyncio.get_running_loop()
        while True:
            while self._incoming:
                yield self._incoming.popleft()
            if self._gone is not None:
                raise LinkError(self._gone)
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def close(self, *, graceful: bool) -> None:
        """Count a DISCONNECT if graceful and up, and end the connection (even if cancelled)."""
        try:
            if graceful and self._up:
                if self.broker.before_disconnect is not None:
                    await self.broker.before_disconnect(self)
                self.disconnects += 1
        finally:
            self.closed = True
            self._end("the connection was closed")

    # -- what a test does ---------------------------------------------------------------

    def settle(self, mid: int, refusal: object = None) -> None:
        """Report ``mid`` written (QoS 0) or acknowledged (QoS 1), refused if ``refusal``."""
        self.pending.pop(mid, None)
        self._hooks.settled(mid, refusal)

    def settle_all(self) -> None:
        """Settle everything pending, oldest first."""
        for mid in list(self.pending):
            self.settle(mid)

    def deliver(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        subscription_ids: Sequence[int] = (),
    ) -> None:
        """A message arrives from the broker on this connection, whatever it subscribed to.

        A topic name with a wildcard in it is reported through the hooks as
        unreadable, as a real link does, and dropped.
        """
        if "+" in topic or "#" in topic:
            self._hooks.unreadable(topic, "a topic name with a wildcard in it")
            return
        self._incoming.append(Incoming(topic, payload, qos, retain, tuple(subscription_ids)))
        self._wake()

    def route(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Deliver to this link's matching subscriptions (MQTT 5: a copy per filter), each at
        the lower of the message's QoS and the subscription's (at most 1)."""
        matching = [f for f in dict.fromkeys(self.filters) if topic_matches(f, topic)]
        if not matching:
            return
        granted = self.granted
        if not self.settings.mqtt5:  # one copy, at the highest QoS of the matching filters
            self.deliver(topic, payload, min(qos, 1, max(granted.get(f, 1) for f in matching)))
            return
        for topic_filter in matching:
            number = self.subscription_numbers.get(topic_filter)
            ids = (number,) if number is not None else ()
            level = min(qos, 1, granted.get(topic_filter, 1))
            self.deliver(topic, payload, level, subscription_ids=ids)

    def lose(self, reason: str = "the broker closed the connection") -> None:
        """The connection goes: the reader gets a LinkError with ``reason``."""
        self._end(reason)

    # -- inside -------------------------------------------------------------------------

    def _hand_over(self, messages: list[Sent]) -> None:
        if any(m.payload in self.broker.poison for m in messages):
            asyncio.get_running_loop().call_soon(self.lose, "the broker hung up on a message")
            return
        self.writes.append(messages)
        self.sent.extend(messages)
        if self.broker.routes_late:
            self._unrouted.extend(m for m in messages if m.retain and m.payload)
        for message in messages:
            self.pending[message.mid] = max(message.qos, self.pending.get(message.mid, 0))
            self.broker.route(message.topic, message.payload, message.qos, message.retain)
        if self.auto_settle:
            loop = asyncio.get_running_loop()
            for mid in dict.fromkeys(m.mid for m in messages):
                loop.call_soon(self._auto_settle, mid)

    def _auto_settle(self, mid: int) -> None:
        if self._up and self.auto_settle and mid in self.pending:
            self.settle(mid)

    def _end(self, reason: str) -> None:
        self._up = False
        if self._gone is None:
            self._gone = reason
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _decode(blob: bytes, mqtt5: bool) -> list[tuple[str, bytes, bool, int]]:
    """Split concatenated PUBLISH packets into (topic, payload, retain, packet id or 0)."""
    out: list[tuple[str, bytes, bool, int]] = []
    pos = 0
    while pos < len(blob):
        header = blob[pos]
        if header & 0xF0 != 0x30:
            raise AssertionError(f"not a PUBLISH packet: {header:#x}")
        length, pos = _varint(blob, pos + 1)
        body = blob[pos : pos + length]
        pos += length
        topic_end = 2 + int.from_bytes(body[:2], "big")
        topic = body[2:topic_end].decode()
        start, packet_id = topic_end, 0
        if header & 0x06:
            packet_id = int.from_bytes(body[start : start + 2], "big")
            start += 2
        if mqtt5:
            properties, start = _varint(body, start)
            start += properties
        out.append((topic, body[start:], bool(header & 1), packet_id))
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``, and the position after it."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
