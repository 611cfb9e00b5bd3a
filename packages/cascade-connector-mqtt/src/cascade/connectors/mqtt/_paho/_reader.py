"""Reading a connection's socket in bulk, in place of paho's byte-at-a-time reads.

aiomqtt reads through paho's ``loop_read()``: one packet per event-loop turn,
three ``recv`` calls per packet, and paho's full ``_handle_publish`` for each
message. A fleet's telemetry outruns that: the kernel's buffers fill and the
broker drops QoS 0 messages for the reader. :class:`BulkReader` instead takes
everything the socket has in large reads, splits it into packets itself, and
turns QoS 0 PUBLISH packets (the telemetry) into :class:`Incoming` messages
directly; every other packet (CONNACK, SUBACK, PUBACK, PINGRESP, QoS 1
PUBLISH, which paho acknowledges) is handed to paho as its own reader would.
It reaches into paho's private ``_in_packet``/``_packet_handle``: checked in
``_compat.py``, and the link falls back to aiomqtt's reader where they are missing.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

from .._link import Incoming
from ._connect import quick_ack

__all__ = ["HAND_OUT_BYTES", "HAND_OUT_EVERY", "BulkReader"]

_READ_SIZE = 256 * 1024
_READS_PER_TURN = 2  # at most 512 KiB (~2,000 messages) a turn: the loop turns every few ms
HAND_OUT_EVERY = 64
"""Messages the link hands to its subscribers between two turns of the loop at most."""
HAND_OUT_BYTES = 64 * 1024
"""Their payload bytes at most: an eighth of what a turn reads, so that a reader that falls
behind reads faster than it hands out, and its buffer fills and sheds (``receive_buffer``)
rather than leaving the backlog at the broker, however big the messages."""
_PUBLISH_QOS0 = 0x30  # first byte of a QoS 0 PUBLISH, DUP and RETAIN bits masked out
_QOS_MASK = 0xF6
_SUBSCRIPTION_IDENTIFIER = 0x0B
_CONN_LOST = 7  # paho's MQTT_ERR_CONN_LOST
_PROTOCOL = 2  # paho's MQTT_ERR_PROTOCOL


class BulkReader:
    """Reads one paho client's socket: the event loop's reader callback for it.

    ``deliver(incoming)`` takes each QoS 0 message; ``unreadable(topic, reason)``
    is told of one whose topic cannot be taken in (not UTF-8, a wildcard in it).
    """

    def __init__(
        self,
        paho: Any,
        sock: Any,
        *,
        mqtt5: bool,
        deliver: Callable[[Incoming], None],
        unreadable: Callable[[str, str], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        self._paho = paho
        self._sock = sock
        self._mqtt5 = mqtt5
        self._deliver = deliver
        self._unreadable = unreadable
        self._failed = failed
        self._buffer = bytearray()
        # where paho's keepalive looks for the last arrival (paho 2.1.0: _last_msg_in)
        self._arrival = (
            "_last_bytes_received" if hasattr(paho, "_last_bytes_received") else "_last_msg_in"
        )

    def __call__(self) -> None:
        """The socket is readable: read what it has, handle every whole packet in it."""
        paho = self._paho
        if paho._sock is not self._sock:
            return  # paho closed it (or reconnected): its own teardown follows
        buffer = self._buffer
        sock = self._sock
        try:
            for _ in range(_READS_PER_TURN):
                data = sock.recv(_READ_SIZE)
                if not data:
                    self._lost(_CONN_LOST)
                    return
                buffer += data
                quick_ack(sock)
                if len(data) < _READ_SIZE and not (
                    isinstance(sock, ssl.SSLSocket) and sock.pending()
                ):
                    break
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        except ssl.SSLWantWriteError:
            paho._call_socket_register_write()
        except OSError as exc:
            self._failed(exc)
            return
        if not buffer:
            return
        with paho._msgtime_mutex:
            setattr(paho, self._arrival, time.monotonic())
        try:
            rc = self._split(buffer)
        except Exception as exc:  # a callback of paho's or ours raised: the connection ends
            self._failed(exc)
            return
        if rc:
            self._lost(rc)

    def _lost(self, rc: int) -> None:
        """End the connection as paho's ``loop_read`` does on this error (it tells aiomqtt)."""
        try:
            self._paho._loop_rc_handle(rc)
        except Exception as exc:
            self._failed(exc)

    def _split(self, buffer: bytearray) -> int:
        """Handle every whole packet at the start of ``buffer`` and remove it; paho's error code."""
        size = len(buffer)
        pos = 0
        paho = self._paho
        while size - pos >= 2:
            first = buffer[pos]
            index = pos + 1
            length = 0
            shift = 0
            while True:
                if index >= size:
                    del buffer[:pos]
                    return 0
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    return _PROTOCOL  # a remaining length of more than four bytes
            end = index + length
            if end > size:
                break
            if first & _QOS_MASK != _PUBLISH_QOS0 or not self._publish(first, buffer, index, end):
                rc = self._hand_to_paho(first, buffer[index:end])
                if rc:
                    return rc
                if paho._sock is not self._sock:
                    return 0  # the packet closed the connection (a DISCONNECT from the broker)
            pos = end
        del buffer[:pos]
        return 0

    def _publish(self, first: int, buffer: bytearray, start: int, end: int) -> bool:
        """Deliver the QoS 0 PUBLISH in ``buffer[start:end]``; False to leave it to paho."""
        topic_end = start + 2 + (buffer[start] << 8 | buffer[start + 1])
        if topic_end > end:
            return False
        ids: tuple[int, ...] = ()
        payload_start = topic_end
        if self._mqtt5:
            parsed = _subscription_ids(buffer, topic_end, end)
            if parsed is None:
                return False  # properties other than subscription identifiers: paho's
            ids, payload_start = parsed
        raw_topic = bytes(buffer[start + 2 : topic_end])
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError as exc:
            self._unreadable(raw_topic.decode(errors="replace"), f"not UTF-8 ({exc})")
            return True
        if "+" in topic or "#" in topic:
            self._unreadable(topic, "a topic name with a wildcard in it")
            return True
        self._deliver(Incoming(topic, bytes(buffer[payload_start:end]), 0, bool(first & 1), ids))
        return True

    def _hand_to_paho(self, first: int, packet: bytearray) -> int:
        """Let paho handle one whole packet, as its ``_packet_read`` would have."""
        paho = self._paho
        paho._in_packet = {
            "command": first,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(packet),
            "packet": packet,
            "to_process": 0,
            "pos": 0,
        }
        try:
            return int(paho._packet_handle())
        finally:
            paho._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }


def _subscription_ids(
    buffer: bytearray, start: int, end: int
) -> tuple[tuple[int, ...], int] | None:
    """The subscription identifiers of MQTT 5 PUBLISH properties at ``start``, and where they end.

    ``None`` when there are other properties (or they are malformed): paho decodes those.
    """
    length, index = _varint(buffer, start, end)
    if length < 0:
        return None
    stop = index + length
    if stop > end:
        return None
    ids = []
    while index < stop:
        if buffer[index] != _SUBSCRIPTION_IDENTIFIER:
            return None
        number, index = _varint(buffer, index + 1, stop)
        if number < 0:
            return None
        ids.append(number)
    return tuple(ids), stop


def _varint(buffer: bytearray, index: int, end: int) -> tuple[int, int]:
    """The variable byte integer at ``index`` and the index after it; (-1, index) if malformed."""
    value = 0
    shift = 0
    while index < end and shift <= 21:
        byte = buffer[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index
        shift += 7
    return -1, index
