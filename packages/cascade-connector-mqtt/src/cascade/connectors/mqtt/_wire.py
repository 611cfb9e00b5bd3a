"""MQTT PUBLISH packets, encoded in bulk for the sender's fast path."""

from __future__ import annotations

import functools

__all__ = [
    "MAX_REMAINING_LENGTH",
    "Headers",
    "encode_publish",
    "encode_publish_qos0",
    "publish_qos0_parts",
]

MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length an MQTT packet can declare (four length bytes)."""

_PUBLISH = 0x30


def _fixed_header(first: int, remaining: int, payload: bytes) -> bytes:
    """The packet type byte and the remaining length as a varint (MQTT 3.1.1 §2.2)."""
    # one or two length bytes (every telemetry envelope) are built directly
    if remaining < 128:
        return bytes((first, remaining))
    if remaining < 16_384:
        return bytes((first, remaining & 0x7F | 0x80, remaining >> 7))
    if remaining > MAX_REMAINING_LENGTH:
        raise ValueError(f"message of {len(payload)} bytes is larger than MQTT allows")
    out = bytearray((first,))
    while remaining:
        byte = remaining % 128
        remaining //= 128
        out.append(byte | 0x80 if remaining else byte)
    return bytes(out)


@functools.lru_cache(maxsize=1024)
def _topic_field(topic: str, mqtt5: bool) -> bytes:
    """A QoS 0 PUBLISH's variable header: topic length, topic, and MQTT 5's empty properties."""
    raw = topic.encode()
    return len(raw).to_bytes(2, "big") + raw + (b"\x00" if mqtt5 else b"")


def publish_qos0_parts(
    topic: str, payload: bytes, retain: bool, mqtt5: bool
) -> tuple[bytes, bytes, bytes]:
    """One QoS 0 PUBLISH packet in three parts to be joined (MQTT 3.1.1 §3.3; MQTT 5 §3.3).

    Parts, so that a batch is joined once rather than per message. Raises
    ValueError when the packet would exceed the protocol's size limit.
    """
    field = _topic_field(topic, mqtt5)
    header = _fixed_header(_PUBLISH | retain, len(field) + len(payload), payload)
    return header, field, payload


class Headers(dict[int, bytes]):
    """The fixed headers of QoS 0 PUBLISH packets to one topic, by payload length, made as
    they are first asked for: ``headers[len(payload)] + headers.field + payload`` is the
    packet (``field``: its variable header, the topic's part, computed once)."""

    def __init__(self, topic: str, retain: bool, mqtt5: bool) -> None:
        super().__init__()
        self.field = _topic_field(topic, mqtt5)
        self._first = _PUBLISH | retain

    def __missing__(self, length: int) -> bytes:
        if len(self) >= _HEADER_LENGTHS:
            self.clear()
        header = self[length] = _fixed_header(self._first, len(self.field) + length, b"")
        return header


_HEADER_LENGTHS = 4096  # payload lengths a Headers keeps (telemetry's span a few hundred)


def encode_publish_qos0(topic: str, payload: bytes, retain: bool, mqtt5: bool) -> bytes:
    """One PUBLISH packet at QoS 0: :func:`publish_qos0_parts` joined."""
    return b"".join(publish_qos0_parts(topic, payload, retain, mqtt5))


def encode_publish(
    topic: str, payload: bytes, retain: bool, mqtt5: bool, qos: int, packet_id: int
) -> bytes:
    """One PUBLISH packet; ``packet_id`` is used (and required) for QoS 1 and 2."""
    if qos == 0:
        return encode_publish_qos0(topic, payload, retain, mqtt5)
    if not 0 < packet_id < 65536:
        raise ValueError(f"packet id {packet_id} out of range")
    raw = topic.encode()
    variable = b"".join(
        (len(raw).to_bytes(2, "big"), raw, packet_id.to_bytes(2, "big"), b"\x00" if mqtt5 else b"")
    )
    first = _PUBLISH | (qos << 1) | retain
    return _fixed_header(first, len(variable) + len(payload), payload) + variable + payload
