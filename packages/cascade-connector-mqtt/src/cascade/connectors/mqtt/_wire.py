"""MQTT PUBLISH packets, encoded in bulk for the sender's fast path."""

from __future__ import annotations

__all__ = ["MAX_REMAINING_LENGTH", "encode_publish", "encode_publish_qos0"]

MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length an MQTT packet can declare (four length bytes)."""

_PUBLISH = 0x30


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte = length % 128
        length //= 128
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_publish_qos0(topic: bytes, payload: bytes, retain: bool, mqtt5: bool) -> bytes:
    """One PUBLISH packet at QoS 0 (MQTT 3.1.1 §3.3; MQTT 5 adds an empty property list).

    Raises ValueError when the packet would exceed the protocol's size limit.
    """
    length = 2 + len(topic) + len(payload) + (1 if mqtt5 else 0)
    if length > MAX_REMAINING_LENGTH:
        raise ValueError(f"message of {len(payload)} bytes is larger than MQTT allows")
    return b"".join(
        (
            bytes((_PUBLISH | (1 if retain else 0),)),
            _remaining_length(length),
            len(topic).to_bytes(2, "big"),
            topic,
            b"\x00" if mqtt5 else b"",
            payload,
        )
    )


def encode_publish(
    topic: bytes, payload: bytes, retain: bool, mqtt5: bool, qos: int, packet_id: int
) -> bytes:
    """One PUBLISH packet; ``packet_id`` is used (and required) for QoS 1 and 2."""
    if qos == 0:
        return encode_publish_qos0(topic, payload, retain, mqtt5)
    if not 0 < packet_id < 65536:
        raise ValueError(f"packet id {packet_id} out of range")
    length = 4 + len(topic) + len(payload) + (1 if mqtt5 else 0)
    if length > MAX_REMAINING_LENGTH:
        raise ValueError(f"message of {len(payload)} bytes is larger than MQTT allows")
    return b"".join(
        (
            bytes((_PUBLISH | (qos << 1) | (1 if retain else 0),)),
            _remaining_length(length),
            len(topic).to_bytes(2, "big"),
            topic,
            packet_id.to_bytes(2, "big"),
            b"\x00" if mqtt5 else b"",
            payload,
        )
    )
