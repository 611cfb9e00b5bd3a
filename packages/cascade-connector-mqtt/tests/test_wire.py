"""The sender's own encoding of QoS 0 PUBLISH packets."""

from __future__ import annotations

import pytest

from cascade.connectors.mqtt._wire import encode_publish, encode_publish_qos0
from cascade.connectors.mqtt.testing._fake_client import packet_ids, parse_publishes


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
