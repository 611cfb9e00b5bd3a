"""One live connection: its link, and what the sender, the subscriptions and presence share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial

from ._confirm import confirmation_topic
from ._link import Incoming, LinkError, LinkFactory, LinkHooks, LinkSettings

__all__ = ["Connection", "Settled"]

Settled = Callable[["Connection", int, object], None]
"""The sender's hook: ``(connection, mid, refusal)``, for what a connection's link settled."""


class Connection:
    """One connection attempt, from CONNECT to close: the only holder of its link.

    The supervisor makes one per attempt and serves it while it is up; the
    sender, the subscriptions and presence are handed it and reach the broker
    only through it. It holds what belongs to this connection alone: its
    link, whether it speaks MQTT 5, its marker topic (and the confirmation
    topic under it), its reader task, the filters of its SUBSCRIBEs the broker
    has not answered, and the messages sent on it directly (status, markers,
    probes), outside the buffer: they are never resent on another connection,
    and whoever waits on one is released when it ends.

    What its link settles goes to ``settled`` with this connection, so a
    message is always settled by the connection it was sent on.
    """

    def __init__(
        self,
        make_link: LinkFactory,
        settings: LinkSettings,
        marker_topic: str,
        *,
        settled: Settled,
        unreadable: Callable[[str, str], None],
        shed: Callable[[int], None],
    ) -> None:
        self._link = make_link(settings, LinkHooks(partial(settled, self), unreadable, shed))
        self.mqtt5 = settings.mqtt5
        # QoS 1 only where the broker must queue for an absent reader: on a clean session it
        # buys nothing Cascade uses, and costs some brokers (NATS: a replicated consumer each)
        self.subscription_qos = 1 if settings.persistent else 0
        self.marker_topic = marker_topic
        self.confirm_topic = confirmation_topic(marker_topic)
        self.own_space = f"{marker_topic}/"  # topics under the marker topic: never dispatched
        self.reader: asyncio.Task[None] | None = None
        self._reader_closes = False  # a callback in the reader called disconnect()
        self._direct: dict[int, asyncio.Future[None]] = {}
        self._direct_topics: dict[int, str] = {}  # message id → topic, of QoS 1+ direct messages
        self._unanswered: list[str] = []  # filters of SUBSCRIBEs without a SUBACK (see subscribe)
        self._ended = False

    # -- the link (see Link) --------------------------------------------------------------

    @property
    def batches(self) -> bool:
        """Whether the sender may queue encoded runs of PUBLISH packets (see ``Link.batches``)."""
        return self._link.batches

    @property
    def subscription_ids(self) -> bool:
        """Whether SUBSCRIBEs may carry MQTT 5 subscription identifiers on this connection."""
        return self._link.subscription_ids

    async def open(self) -> None:
        """CONNECT and wait for the CONNACK; raises ``ConnectError``; :meth:`close` follows."""
        await self._link.open()

    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return self._link.connected()

    def publish(self, topic: str, raw: bytes, qos: int, retain: bool) -> int | None:
        """Hand one message to the link; its message id, ``None`` if the connection is going.

        The sender's: it settles it through the buffer. Raises ``ValueError`` for a
        message MQTT cannot carry. (Messages of the connection's own go by :meth:`send`.)
        """
        return self._link.publish(topic, raw, qos, retain)

    def queue_qos0(self, packets: bytes) -> int:
        """Write encoded QoS 0 PUBLISH packets; one message id, settled once all are written."""
        return self._link.queue_qos0(packets)

    def packet_id(self) -> int:
        """A fresh packet id for a QoS 1 PUBLISH the sender encodes itself."""
        return self._link.packet_id()

    def queue_qos1(self, packets: bytes, packet_ids: Sequence[int]) -> None:
        """Write encoded QoS 1 PUBLISH packets; each id is settled by its PUBACK."""
        self._link.queue_qos1(packets, packet_ids)

    def backlog(self) -> int:
        """QoS 1+ messages the client still waits on."""
        return self._link.backlog()

    async def subscribe(self, filters: Sequence[tuple[str, int | None]]) -> list[object]:
        """SUBSCRIBE to (filter, subscription id) pairs at :attr:`subscription_qos`; their
        reason codes; ``LinkError``.

        Its filters stay in :attr:`unanswered` after a ``LinkError``: the
        connection went (or the broker did not answer) with it outstanding.
        """
        names = [topic_filter for topic_filter, _ in filters]
        self._unanswered += names
        try:
            codes = await self._link.subscribe(filters, self.subscription_qos)
        except LinkError:
            raise
        except BaseException:  # cancelled: whoever waited is gone, and so is the question
            self._answered(names)
            raise
        self._answered(names)
        return codes

    def _answered(self, names: list[str]) -> None:
        for name in names:
            self._unanswered.remove(name)

    @property
    def unanswered(self) -> tuple[str, ...]:
        """The filters of SUBSCRIBEs on this connection that the broker did not answer."""
        return tuple(self._unanswered)

    def unsubscribe(self, topic_filter: str) -> None:
        """Queue an UNSUBSCRIBE without waiting for the broker's UNSUBACK."""
        self._link.unsubscribe(topic_filter)

    def messages(self) -> AsyncIterator[Incoming]:
        """The incoming messages; raises ``LinkError`` when the connection goes."""
        return self._link.messages()

    async def close(self, *, graceful: bool) -> None:
        """Release the link: DISCONNECT first if ``graceful`` and still possible. Never hangs."""
        await self._link.close(graceful=graceful)

    # -- messages sent directly -----------------------------------------------------------

    def send(self, topic: str, raw: bytes, qos: int, retain: bool) -> asyncio.Future[None]:
        """Hand a message straight to the link, outside the buffer; the future ends when settled.

        It also ends, unsettled, when the connection does (or at once if it is going).
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mid = None if self._ended else self._link.publish(topic, raw, qos, retain)
        if mid is None:
            future.set_result(None)
            return future
        self._direct[mid] = future
        if qos:
            self._direct_topics[mid] = topic
        return future

    def settled(self, mid: int) -> str | None:
        """The link settled ``mid``: release a direct message's waiter; its topic if QoS 1+."""
        future = self._direct.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)
        return self._direct_topics.pop(mid, None)

    def end(self) -> None:
        """The connection is gone: nothing sent on it directly will be settled any more."""
        self._ended = True
        for future in self._direct.values():
            if not future.done():
                future.set_result(None)
        self._direct.clear()
        self._direct_topics.clear()

    # -- the reader -----------------------------------------------------------------------

    def in_reader(self) -> bool:
        """Whether the running task is this connection's reader (a subscription callback)."""
        return self.reader is not None and asyncio.current_task() is self.reader

    def close_from_reader(self) -> None:
        """A callback in the reader called disconnect(): the reader ends once it returns.

        The supervisor waits for the reader's end instead of cancelling it,
        which would cancel the callback in the middle of its disconnect().
        """
        self._reader_closes = True

    @property
    def reader_closes(self) -> bool:
        """Whether the reader is to end by itself after the current callback (see above)."""
        return self._reader_closes
