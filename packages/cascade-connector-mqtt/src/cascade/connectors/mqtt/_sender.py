"""The sender: the one task that drains the outgoing buffer into the link, and what it settles."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate, chain, islice, repeat

from cascade.connector_kit import RateLimitedLogger, bounded
from cascade.interfaces import ConnectorStats, FlushTimeoutError

from ._buffer import Outgoing, OutgoingBuffer, count_messages
from ._confirm import Confirmations
from ._connection import Connection
from ._options import ACKED_WINDOW
from ._wire import Headers, encode_publish, publish_qos0_parts

__all__ = ["Sender"]

_log = logging.getLogger("cascade.connectors.mqtt")

_BATCH = 2048  # messages handed to the link before the sender lets the event loop write
_BATCH_BYTES = 64 * 1024  # QoS 0 payload bytes per write (a larger message goes alone)
_HEADER_TOPICS = 64  # topics whose headers are kept (one: an engine's telemetry)


class Sender:
    """Everything published goes out through here, and is settled here.

    Buffered messages (telemetry, control) are drained by :meth:`run`, one
    task per connection, at most ``max_in_flight`` ahead of the broker; the
    buffer's ledger knows what is in flight and resends it after a lost
    connection. The connector's own messages (status, markers) go straight
    through the :class:`~._connection.Connection` instead. Each connection
    reports what its link settled, of either kind, through :meth:`settled`.
    It keeps no connection: it is handed the one it works on.
    """

    def __init__(
        self, buffer_size: int, max_in_flight: int, stats: ConnectorStats, log: RateLimitedLogger
    ) -> None:
        self.buffer = OutgoingBuffer(buffer_size)
        self.confirmations = Confirmations(self.buffer, max_in_flight // 4)  # of QoS 0 messages
        self.max_in_flight = max_in_flight
        self.wake: asyncio.Event | None = None
        self._stats = stats
        self._log = log
        self._refused_topics: set[str] = set()  # topics whose refusal was reported
        self._header_cache: dict[tuple[str, bool, bool], Headers] = {}

    def start(self) -> None:
        """``connect()`` begins: a new wake-up event on the running loop."""
        self.wake = asyncio.Event()

    def wake_up(self) -> None:
        """Have whoever drains the buffer (the sender, or the standby's bridge) look again."""
        if self.wake is not None:
            self.wake.set()

    # -- publishing -----------------------------------------------------------------------

    def enqueue(self, topic: str, raw: bytes, qos: int, retain: bool) -> None:
        """Buffer a message for the sender; a full buffer drops (and counts) its oldest."""
        if self.buffer.add(topic, raw, qos, retain):
            self._stats.dropped += 1
            self._log.warning(
                "buffer-full",
                "outgoing buffer full (%d messages): dropped the oldest",
                self.buffer.maxsize,
            )
        if self.wake is not None:
            self.wake.set()

    def enqueue_many(self, topic: str, raws: Sequence[bytes], qos: int, retain: bool) -> None:
        """Buffer messages to one topic, in order, as :meth:`enqueue` does each."""
        dropped = self.buffer.add_many(topic, raws, qos, retain)
        if dropped:
            self._stats.dropped += dropped
            self._log.warning(
                "buffer-full",
                "outgoing buffer full (%d messages): dropped the oldest",
                self.buffer.maxsize,
            )
        if self.wake is not None:
            self.wake.set()

    async def flush(self, timeout: float, where: str) -> None:
        """Wait until everything buffered so far is settled; FlushTimeoutError after ``timeout``."""
        done = self.buffer.wait_for(self.buffer.last_seq)
        if not done.done():
            self.confirmations.want(self.wake)  # QoS 0 messages wait for a broker's answer
        try:
            async with bounded(timeout):
                await done
        except asyncio.TimeoutError:
            raise FlushTimeoutError(
                f"{len(self.buffer)} messages not yet accepted by {where} after {timeout:g} s"
            ) from None

    def settled(self, connection: Connection, mid: int, refusal: object = None) -> None:
        """A link's hook: message (or run) ``mid`` was written (QoS 0) or acknowledged (QoS 1+).

        An acknowledgement also confirms the QoS 0 messages written before
        the acknowledged packet (see ``_confirm.py``); ``published`` counts
        messages once confirmed. ``refusal`` is the reason code of a PUBACK
        that refused the message (MQTT 5, e.g. "Not authorized" from an ACL):
        counted in ``refused``, and reported once per topic. A refused
        confirmation request still confirms what was written before it.
        """
        buffer = self.buffer
        refused = 0
        if refusal is not None:
            messages = buffer.in_flight.get(mid)
            if messages:
                refused = count_messages(messages)
                self._refused(messages[0].topic, refusal, refused)
        settled = buffer.confirm(mid)
        if settled:
            self._stats.published += settled - refused
            # Refill at half the window: one wake-up per batch, not per acknowledgement; and at
            # once after a confirmation request's answer (it settles a whole run of QoS 0), so
            # that what we send carries the ACK of that answer. Left to TCP's delayed ACK, the
            # broker's next answer would wait for it (Nagle's algorithm, mosquitto's default).
            if buffer.queued and (
                buffer.in_flight_count <= self.max_in_flight // 2
                or settled >= self.confirmations.every
            ):
                wake = self.wake
                if wake is not None:
                    wake.set()
            return
        topic = connection.settled(mid)  # a message sent directly, outside the buffer
        if refusal is not None and topic is not None:
            self._refused(topic, refusal, 1)

    def _refused(self, topic: str, reason: object, count: int) -> None:
        self._stats.refused += count
        if topic not in self._refused_topics:
            self._refused_topics.add(topic)
            _log.warning("the broker refused a message to %r: %s", topic, reason)

    def drop_unsendable(self, topic: str, exc: Exception) -> None:
        """A message MQTT cannot carry (too large, ...): dropped, counted and logged."""
        self._stats.dropped += 1
        self._log.warning("unsendable", "dropped a message to %r: %s", topic, exc)

    # -- connections ----------------------------------------------------------------------

    def lost(self) -> None:
        """The connection is gone: put what it did not confirm back in the queue."""
        self.confirmations.asked()  # nothing to ask on this connection any more
        given_up, overflow = self.buffer.requeue()
        if given_up is not None:
            self._stats.dropped += 1
            _log.warning(
                "gave up a message to %r: the connection was lost each of the %d times "
                "it was sent alone (does the broker close connections it refuses?)",
                given_up.topic,
                self.buffer.max_losses,
            )
        if overflow:
            self._stats.dropped += overflow
            _log.warning(
                "outgoing buffer full (%d messages) with the unconfirmed ones put back: "
                "dropped the %d oldest",
                self.buffer.maxsize,
                overflow,
            )

    def discard(self) -> None:
        """``disconnect()`` ends: drop (and count) everything still buffered."""
        lost = self.buffer.clear()
        if lost:
            self._stats.dropped += lost
            _log.warning("disconnect discarded %d unsent messages", lost)

    # -- the drain ------------------------------------------------------------------------

    def _ask(self, connection: Connection) -> bool:
        """A confirmation request; False when the connection is going."""
        mid = connection.publish(connection.confirm_topic, b"", 1, False)
        if mid is None:
            return False
        self.buffer.request(mid)
        self.confirmations.asked()
        return True

    async def run(self, connection: Connection) -> None:
        """Drain the buffer into the connection, at most ``max_in_flight`` ahead, until it goes.

        QoS 0 runs are encoded here and queued as one write per batch (one
        write and one completion per ~64 KB instead of per message: paho's
        per-message path costs more than the rest of the pipeline together).
        Under MQTT 3.1.1 so are QoS 1 runs, each message with its own packet
        id. Otherwise messages go through the link's ``publish()``.
        """
        assert self.wake is not None
        wake, buffer, confirmations = self.wake, self.buffer, self.confirmations
        mqtt5, connected, publish = connection.mqtt5, connection.connected, connection.publish
        queued = buffer.queued
        fast = connection.batches
        fast_qos1 = fast and not mqtt5
        acked_window = min(self.max_in_flight, ACKED_WINDOW)
        every = confirmations.every

        def backlog() -> int:  # messages the client holds: its per-PUBACK work grows with them
            return connection.backlog() if fast else buffer.in_flight_count

        wake.set()  # what waits in the buffer goes at once
        while True:
            await wake.wait()
            wake.clear()
            window = 1 if buffer.probing else self.max_in_flight
            handed = 0
            while queued and buffer.in_flight_count < window and handed < _BATCH:
                if not connected():
                    return  # the connection is going; the supervisor takes over
                qos = queued[0].qos
                if (qos == 0 and fast) or (qos == 1 and fast_qos1):
                    handed += self._send_batch(connection, window, qos)
                    if buffer.unrequested >= every and not self._ask(connection):
                        return
                    continue
                if backlog() >= acked_window:
                    break  # the client's work per PUBACK grows with this; settled() wakes us
                message = buffer.take()
                try:
                    mid = publish(message.topic, message.raws[0], message.qos, message.retain)
                except ValueError as exc:  # e.g. larger than MQTT allows
                    self.drop_unsendable(message.topic, exc)
                    continue
                if mid is None:
                    buffer.put_back(message)
                    return
                buffer.sent(mid, [message])
                handed += 1
                if buffer.unrequested >= every and not self._ask(connection):
                    return
            if (
                buffer.unrequested
                and confirmations.due(bool(queued), wake)
                and not self._ask(connection)
            ):
                return
            if (
                queued
                and buffer.in_flight_count < window
                and ((queued[0].qos == 0 and fast) or backlog() < acked_window)
            ):
                wake.set()
                await asyncio.sleep(0)  # let the event loop write what we handed over

    def _send_batch(self, connection: Connection, window: int, qos: int) -> int:
        """Encode the run of messages of one QoS at the head of the queue into one write.

        QoS 0: the whole run is settled when written (one message id for the
        run). QoS 1 (MQTT 3.1.1 only): each message has its own packet id,
        settled by its PUBACK.
        """
        buffer = self.buffer
        room = window - buffer.in_flight_count
        if not qos:
            messages, packets = self.qos0_run(connection.mqtt5, room)
            if not messages:
                return 1
            buffer.sent(connection.queue_qos0(packets), messages)
            return count_messages(messages)
        queued = buffer.queued
        mqtt5 = connection.mqtt5
        count = 0
        ids: list[int] = []
        parts: list[bytes] = []
        size = 0
        while queued and queued[0].qos == qos and count < room and size < _BATCH_BYTES:
            message = buffer.take()
            raw = message.raws[0]
            mid = connection.packet_id()
            try:
                packet = encode_publish(message.topic, raw, message.retain, mqtt5, qos, mid)
            except ValueError as exc:
                self.drop_unsendable(message.topic, exc)
                continue
            buffer.sent(mid, [message])
            ids.append(mid)
            parts.append(packet)
            size += len(raw)
            count += 1
        if parts:
            connection.queue_qos1(b"".join(parts), ids)
        return max(1, count)

    def qos0_run(self, mqtt5: bool, room: int) -> tuple[list[Outgoing], bytes]:
        """Take the QoS 0 messages at the head of the queue (at most ``room``, about 64 KB of
        payload, or one larger message alone), encoded as one write; one that MQTT cannot
        carry is dropped and counted.

        This is every task event's last stage, so an entry's messages (a run's telemetry of
        a loop turn) are framed without a Python step per message: each given its fixed
        header (cached by length, the topic's part computed once) and joined, in one call.
        """
        buffer = self.buffer
        queued = buffer.queued
        taken: list[Outgoing] = []
        parts: list[bytes] = []
        count = size = 0
        while queued and count < room and size < _BATCH_BYTES:
            head = queued[0]
            if head.qos:
                break
            raws = head.raws
            take = min(len(raws), room - count)
            ends = list(accumulate(map(len, islice(raws, take)), initial=size))
            if ends[-1] > _BATCH_BYTES:
                take = bisect_right(ends, _BATCH_BYTES) - 1
                if not take:
                    if count:
                        break  # a larger message goes alone, in the next write
                    self._qos0_alone(mqtt5, taken, parts)
                    break
            entry = buffer.take(take)
            headers, raws = self._headers(entry.topic, entry.retain, mqtt5), entry.raws
            parts += chain.from_iterable(
                zip(map(headers.__getitem__, map(len, raws)), repeat(headers.field), raws)
            )
            taken.append(entry)
            count += take
            size = ends[take]
        return taken, b"".join(parts)

    def _qos0_alone(self, mqtt5: bool, taken: list[Outgoing], parts: list[bytes]) -> None:
        """The message at the head of the queue, larger than a write's 64 KB: taken alone, or
        dropped and counted where MQTT cannot carry it."""
        message = self.buffer.take()
        try:
            parts += publish_qos0_parts(message.topic, message.raws[0], message.retain, mqtt5)
        except ValueError as exc:
            self.drop_unsendable(message.topic, exc)
            return
        taken.append(message)

    def _headers(self, topic: str, retain: bool, mqtt5: bool) -> Headers:
        key = (topic, retain, mqtt5)
        headers = self._header_cache.get(key)
        if headers is None:
            if len(self._header_cache) >= _HEADER_TOPICS:
                self._header_cache.clear()
            headers = self._header_cache[key] = Headers(topic, retain, mqtt5)
        return headers
