"""The sender's own encoding of QoS 0 PUBLISH packets."""

from __future__ import annotations

from typing import Any, cast

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from cascade.connectors.mqtt._wire import encode_publish, encode_publish_qos0, publish_qos0_parts


def _packets(blob: bytes) -> list[tuple[int, bytes]]:
    """Split concatenated MQTT packets into (first byte, body), reading each remaining length."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(blob):
        header, length, shift = blob[pos], 0, 0
        pos += 1
        while True:
            byte = blob[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out.append((header, blob[pos : pos + length]))
        pos += length
    return out


def parse_publishes(blob: bytes) -> list[tuple[str, bytes, bool]]:
    """Concatenated MQTT 3.1.1 PUBLISH packets as (topic, payload, retain)."""
    out: list[tuple[str, bytes, bool]] = []
    for header, body in _packets(blob):
        assert header & 0xF0 == 0x30, f"not a PUBLISH: {header:#x}"
        topic_end = 2 + int.from_bytes(body[:2], "big")
        start = topic_end + (2 if header & 0x06 else 0)
        out.append((body[2:topic_end].decode(), body[start:], bool(header & 1)))
    return out


def packet_ids(blob: bytes) -> list[int]:
    """The packet ids of the QoS 1 and 2 PUBLISH packets in ``blob``."""
    ids = []
    for header, body in _packets(blob):
        if header & 0x06:
            topic_end = 2 + int.from_bytes(body[:2], "big")
            ids.append(int.from_bytes(body[topic_end : topic_end + 2], "big"))
    return ids


@pytest.mark.parametrize(
    "remaining", [5, 6, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 2_097_300]
)
def test_packets_round_trip_at_every_length_boundary(remaining: int) -> None:
    """The remaining length is encoded right on both sides of each varint boundary."""
    size = remaining - 5  # topic length (2) and "a/b" (3)
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    packet = encode_publish_qos0("a/b", payload, False, False)
    assert parse_publishes(packet) == [("a/b", payload, False)]


def test_retain_flag_and_concatenation() -> None:
    """The retain bit is set when asked, and packets can be sent back to back."""
    blob = encode_publish_qos0("t/1", b"{}", True, False) + encode_publish_qos0(
        "t/2", b"x", False, False
    )
    assert parse_publishes(blob) == [("t/1", b"{}", True), ("t/2", b"x", False)]


def test_mqtt5_adds_an_empty_property_list() -> None:
    """MQTT 5 PUBLISH has a property length (0) after the topic."""
    packet = encode_publish_qos0("t", b"p", False, True)
    assert packet == b"\x30\x05\x00\x01t\x00p"


def test_qos1_packet_carries_its_packet_id() -> None:
    """A QoS 1 PUBLISH has the QoS bits and the packet id after the topic."""
    packet = encode_publish("t", b"p", True, False, 1, 0x1234)
    assert packet == b"\x33\x06\x00\x01t\x12\x34p"
    assert packet_ids(packet) == [0x1234]


def test_qos1_needs_a_valid_packet_id() -> None:
    """Packet id 0 is not allowed for QoS 1."""
    with pytest.raises(ValueError, match="packet id"):
        encode_publish("t", b"p", False, False, 1, 0)


_BOUNDARIES = (127, 128, 16_383, 16_384, 2_097_151, 2_097_152)
_sizes = st.one_of(
    st.integers(min_value=0, max_value=300),
    st.sampled_from(_BOUNDARIES).flatmap(lambda b: st.integers(b - 40, b + 3)),
)
_topics = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="+#\x00"),
    min_size=1,
    max_size=60,
)


def paho_packet(topic: str, payload: bytes, retain: bool, mqtt5: bool, qos: int, mid: int) -> bytes:
    """The PUBLISH packet paho itself queues for these arguments."""
    protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    client.on_socket_register_write = lambda *args: None  # queue, do not write
    client._sock = cast(Any, object())  # paho queues a PUBLISH only for a connected socket
    try:
        client._send_publish(mid, topic.encode(), payload, qos, retain)
        return bytes(client._out_packet[-1]["packet"])
    finally:
        client._sock = None  # nothing for paho to close


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(
    topic=_topics,
    size=_sizes,
    retain=st.booleans(),
    mqtt5=st.booleans(),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(min_value=1, max_value=65535),
)
def test_every_packet_is_byte_for_byte_what_paho_queues(
    topic: str, size: int, retain: bool, mqtt5: bool, qos: int, mid: int
) -> None:
    """The fast path's encoder and paho agree exactly: 3.1.1 and 5, QoS 0 and 1, retain, sizes."""
    payload = bytes(i % 251 for i in range(size))
    expected = paho_packet(topic, payload, retain, mqtt5, qos, mid)
    assert encode_publish(topic, payload, retain, mqtt5, qos, mid) == expected
    if qos == 0:
        assert b"".join(publish_qos0_parts(topic, payload, retain, mqtt5)) == expected
