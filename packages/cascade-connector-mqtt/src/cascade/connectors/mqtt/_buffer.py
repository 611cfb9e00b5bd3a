"""The outgoing buffer: bounded, drop-oldest, ordered, with flush tracking."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import NamedTuple

__all__ = ["Outgoing", "OutgoingBuffer", "Requeued", "count_messages"]


_tuple_new = tuple.__new__
_RAWS = attrgetter("raws")


class Outgoing(NamedTuple):
    """Messages waiting to be sent, one or more to one topic at one QoS, in publish order.

    ``seq`` numbers the first (messages are numbered in publish order; the others follow
    it), ``raws`` are their payloads. QoS 0 messages published one after the other to one
    topic join one entry (a run's telemetry, a task's log lines), so that the buffer holds
    an object per run of them rather than one per message: each object is one more for the
    garbage collector to look at while it waits, and telemetry waits by the hundred. Only
    the entry at the queue's tail grows, and only the queue's head is cut.
    """

    seq: int
    topic: str
    raws: list[bytes]
    qos: int
    retain: bool


def count_messages(entries: Iterable[Outgoing]) -> int:
    """How many messages ``entries`` hold."""
    return sum(map(len, map(_RAWS, entries)))


class Requeued(NamedTuple):
    """What :meth:`OutgoingBuffer.requeue` could not put back: each counts as settled."""

    given_up: Outgoing | None  # probed alone through ``max_losses`` lost connections
    overflow: int  # oldest messages dropped because the queue would exceed ``maxsize``


class OutgoingBuffer:
    """Messages published but not yet accepted by the broker.

    ``queued`` holds messages not yet handed to the MQTT client, oldest
    first, in entries of one or more (:class:`Outgoing`), at most ``maxsize``
    messages (``queued_count``): adding to a full buffer drops the
    oldest (the return value of :meth:`add` says so). ``in_flight`` maps a
    client message id to the entries handed to the client under it and not
    yet confirmed by the broker; ``in_flight_count`` counts their messages.
    After a lost connection :meth:`requeue` puts those back in front, in
    order, so they are sent again after reconnection. :meth:`wait_for` lets
    a flush wait until every message up to a sequence number is settled
    (confirmed or dropped).

    A QoS 1 or 2 message is confirmed by its own acknowledgement. A QoS 0
    run (one id may carry a batch) has none: it is confirmed by the broker's
    answer to a later packet, the broker having read everything written
    before it on the connection (TCP keeps order). Every QoS 1+ message
    handed over is such a *confirmation request* for the QoS 0 runs handed
    before it (:attr:`unrequested` counts those not yet covered by one), and
    :meth:`request` records one the sender made for that purpose alone.

    A connection lost with messages in flight starts :attr:`probing`: the
    sender hands over one message at a time until the broker confirms one.
    A message that was alone in flight when ``max_losses`` connections in a
    row were lost is given up (see :meth:`requeue`): a broker may close the
    connection on a message it refuses (MQTT 3.1.1 allows it, some brokers do
    it under MQTT 5 too), and resending it for ever would stall everything
    behind it.

    ``aside`` holds QoS 0 runs the standby connection's bridge handed to its
    link (by that link's message ids), settled when written
    (:meth:`written_aside`) or put back in front (:meth:`put_back_aside`).
    """

    def __init__(self, maxsize: int, max_losses: int = 3) -> None:
        if maxsize < 1:
            raise ValueError("buffer size must be at least 1")
        self.maxsize = maxsize
        self.max_losses = max_losses
        self.queued: deque[Outgoing] = deque()
        self.queued_count = 0  # messages in ``queued``
        self.in_flight: dict[int, list[Outgoing]] = {}
        self.in_flight_count = 0
        self.last_seq = 0
        self.probing = False
        self.unrequested = 0  # QoS 0 messages handed since the last confirmation request
        self.resent = 0  # messages handed again after a lost connection
        self._qos0_runs: list[int] = []  # ids of the QoS 0 runs those are in
        self._requests: dict[int, list[int]] = {}  # request id → the QoS 0 runs it confirms
        self._resend_up_to = 0  # seq of the last message put back by requeue()
        self._probed = 0  # seq of the message last probed alone, and the connections lost since
        self._losses = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.aside: dict[int, list[Outgoing]] = {}
        self.aside_count = 0

    def __len__(self) -> int:
        return self.queued_count + self.in_flight_count + self.aside_count

    def add(self, topic: str, raw: bytes, qos: int, retain: bool) -> bool:
        """Queue a message; returns ``True`` if the oldest queued one was dropped to make room."""
        return self.add_many(topic, (raw,), qos, retain) > 0

    def add_many(self, topic: str, raws: Sequence[bytes], qos: int, retain: bool) -> int:
        """Queue messages to one topic, in order; returns how many of the oldest queued ones
        were dropped to make room (as :meth:`add` does, once for the lot)."""
        count = len(raws)
        if not count:
            return 0
        seq = self.last_seq + 1
        self.last_seq += count
        queued = self.queued
        tail = queued[-1] if queued and not qos else None
        if (
            tail is not None
            and tail.seq + len(tail.raws) == seq  # it ends where these begin
            and not tail.qos
            and tail.retain == retain
            and tail.topic == topic
        ):
            tail.raws.extend(raws)
        else:
            # tuple.__new__ skips NamedTuple's Python-level __new__: once per publish() at most
            queued.append(_tuple_new(Outgoing, (seq, topic, list(raws), qos, retain)))
        self.queued_count += count
        excess = self.queued_count - self.maxsize
        if excess <= 0:
            return 0
        self._drop_oldest(excess)
        return excess

    def _drop_oldest(self, count: int) -> None:
        """Drop the ``count`` oldest queued messages (there are at least that many)."""
        queued = self.queued
        while count:
            size = len(queued[0].raws)
            if size > count:
                self.take(count)
                break
            queued.popleft()
            self.queued_count -= size
            count -= size
        if self._waiters:
            self._check()

    def take(self, count: int = 1) -> Outgoing:
        """The ``count`` oldest messages, all of the queue's first entry (it has at least that
        many), taken off the queue as one entry."""
        queued = self.queued
        self.queued_count -= count
        head = queued[0]
        raws = head.raws
        if len(raws) == count:
            return queued.popleft()
        first = raws[:count]
        del raws[:count]
        seq, topic, _, qos, retain = head
        queued[0] = _tuple_new(Outgoing, (seq + count, topic, raws, qos, retain))
        return _tuple_new(Outgoing, (seq, topic, first, qos, retain))

    def put_back(self, entry: Outgoing) -> None:
        """An entry just taken and not handed over: back in front of the queue."""
        self.queued.appendleft(entry)
        self.queued_count += len(entry.raws)

    def sent(self, mid: int, messages: list[Outgoing]) -> None:
        """Record that the entries ``messages``, all of one QoS, were handed to the client under
        id ``mid``."""
        self.in_flight[mid] = messages
        count = count_messages(messages)
        self.in_flight_count += count
        if messages[0].seq <= self._resend_up_to:
            up_to = self._resend_up_to
            self.resent += sum(max(0, min(len(m.raws), up_to - m.seq + 1)) for m in messages)
        if messages[0].qos == 0:
            self._qos0_runs.append(mid)
            self.unrequested += count
        elif self._qos0_runs:
            self.request(mid)

    def request(self, mid: int) -> None:
        """Record that ``mid`` (QoS 1+) asks the broker to confirm the QoS 0 runs handed so far."""
        if self._qos0_runs:
            self._requests[mid] = self._qos0_runs
            self._qos0_runs = []
            self.unrequested = 0

    def confirm(self, mid: int) -> int:
        """The client reports message id ``mid``; returns how many of ours that settles.

        For a QoS 0 run that is only its write: it waits for a request's answer.
        """
        settled = 0
        requests = self._requests
        if requests and mid in requests:
            # the broker answered this request: it read every QoS 0 run handed before it
            while requests:
                request = next(iter(requests))
                for run in requests.pop(request):
                    settled += self._settle(self.in_flight.pop(run, None))
                if request == mid:
                    break
        messages = self.in_flight.get(mid)
        if messages is not None and messages[0].qos:
            settled += self._settle(self.in_flight.pop(mid))
        if settled:
            self.probing = False
            if self._waiters:
                self._check()
        return settled

    def _settle(self, messages: list[Outgoing] | None) -> int:
        if messages is None:
            return 0
        count = count_messages(messages)
        self.in_flight_count -= count
        return count

    def set_aside(self, mid: int, messages: list[Outgoing]) -> None:
        """Record QoS 0 entries ``messages`` handed to the standby's link under its id ``mid``."""
        self.aside[mid] = messages
        self.aside_count += count_messages(messages)

    def written_aside(self, mid: int) -> int:
        """The standby's link wrote run ``mid``: how many messages that settles (0: not ours)."""
        messages = self.aside.pop(mid, None)
        if messages is None:
            return 0
        count = count_messages(messages)
        self.aside_count -= count
        if self._waiters:
            self._check()
        return count

    def put_back_aside(self) -> int:
        """The runs set aside and not written: back in front of the queue, in publish order."""
        if not self.aside:
            return 0
        unwritten = sorted(m for run in self.aside.values() for m in run)
        count = self.aside_count
        self.aside.clear()
        self.aside_count = 0
        self.queued.extendleft(reversed(unwritten))
        self.queued_count += count
        return count

    def requeue(self) -> Requeued:
        """After a lost connection: put every unconfirmed message back in front, in publish order.

        Gives up the message probed alone if this was the ``max_losses``-th
        connection in a row lost while it was in flight, and drops the oldest
        messages beyond ``maxsize`` (in flight, messages were not counted in it).
        """
        self._forget_requests()
        if not self.in_flight:
            return Requeued(None, 0)
        unconfirmed = sorted(m for batch in self.in_flight.values() for m in batch)
        last = unconfirmed[-1]
        self._resend_up_to = last.seq + len(last.raws) - 1
        given_up = None
        count = self.in_flight_count
        if self.probing and count == 1:
            seq = unconfirmed[0].seq
            self._losses = self._losses + 1 if seq == self._probed else 1
            self._probed = seq
            if self._losses >= self.max_losses:
                given_up = unconfirmed.pop()
                count = 0
        self.probing = True
        self.in_flight.clear()
        self.in_flight_count = 0
        self.queued.extendleft(reversed(unconfirmed))
        self.queued_count += count
        overflow = max(0, self.queued_count - self.maxsize)
        if overflow:
            self._drop_oldest(overflow)
        elif self._waiters:
            self._check()
        return Requeued(given_up, overflow)

    def clear(self) -> int:
        """Forget everything; returns how many messages were discarded."""
        count = len(self)
        self.queued.clear()
        self.queued_count = 0
        self.in_flight.clear()
        self.in_flight_count = 0
        self.aside.clear()
        self.aside_count = 0
        self.probing = False
        self._forget_requests()
        self._check()
        return count

    def _forget_requests(self) -> None:
        """The connection is gone: requests on it will never be answered."""
        self._qos0_runs = []
        self._requests.clear()
        self.unrequested = 0

    def oldest_pending(self) -> int:
        """The sequence number of the oldest unsettled message (``last_seq + 1`` if none)."""
        oldest = self.last_seq + 1
        if self.queued:
            oldest = self.queued[0].seq
        if self.in_flight:
            # handed to the client in publish order, and dicts keep insertion order
            oldest = min(oldest, next(iter(self.in_flight.values()))[0].seq)
        if self.aside:
            oldest = min(oldest, next(iter(self.aside.values()))[0].seq)
        return oldest

    @property
    def awaited(self) -> bool:
        """Whether a flush waits for messages not settled yet."""
        return any(not future.done() for _, future in self._waiters)

    def wait_for(self, seq: int) -> asyncio.Future[None]:
        """A future that completes once every message up to ``seq`` is settled."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        self._check()
        return future

    def _check(self) -> None:
        oldest = self.oldest_pending()
        still: list[tuple[int, asyncio.Future[None]]] = []
        for seq, future in self._waiters:
            if future.done():
                continue
            if seq < oldest:
                future.set_result(None)
            else:
                still.append((seq, future))
        self._waiters = still
