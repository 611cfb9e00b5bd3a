"""One live connection: what the sender, the subscriptions and presence share while it is up."""

from __future__ import annotations

import asyncio

from ._confirm import confirmation_topic
from ._link import Link

__all__ = ["Connection"]


class Connection:
    """A connection from its CONNACK to its end, made by the supervisor and handed to the parts.

    It holds what belongs to this connection alone: its link, whether it
    speaks MQTT 5, its marker topic (and the confirmation topic under it),
    its reader task, and the messages sent on it directly (status, markers,
    probes), outside the buffer: they are never resent on another
    connection, and whoever waits on one is released when it ends.
    """

    def __init__(self, link: Link, mqtt5: bool, marker_topic: str) -> None:
        self.link = link
        self.mqtt5 = mqtt5
        self.marker_topic = marker_topic
        self.confirm_topic = confirmation_topic(marker_topic)
        self.own_space = f"{marker_topic}/"  # topics under the marker topic: never dispatched
        self.reader: asyncio.Task[None] | None = None
        self._reader_closes = False  # a callback in the reader called disconnect()
        self._direct: dict[int, asyncio.Future[None]] = {}
        self._direct_topics: dict[int, str] = {}  # message id → topic, of QoS 1+ direct messages
        self._ended = False

    def send(self, topic: str, raw: bytes, qos: int, retain: bool) -> asyncio.Future[None]:
        """Hand a message straight to the link, outside the buffer; the future ends when settled.

        It also ends, unsettled, when the connection does (or at once if it is going).
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        mid = None if self._ended else self.link.publish(topic, raw, qos, retain)
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
