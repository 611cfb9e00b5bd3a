"""Fire-and-forget publishing: encoding, buffering, overflow, ordering, flush."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pytest_mock import MockerFixture

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing._fake_client import (
    FakeClient,
    FakeMqtt,
    fast_path_only,
    packet_ids,
    parse_publishes,
)
from cascade.interfaces import FlushTimeoutError, StatusMessage


def sent_qos0(fake_mqtt: FakeMqtt) -> list[tuple[str, bytes, bool]]:
    """Every QoS 0 message published through the connector, across all its clients, in order."""
    return [
        (topic, payload, retain)
        for client in fake_mqtt.clients
        for run in client.paho.handed
        for topic, payload, qos, retain in run
        if qos == 0 and topic.startswith("t/")
    ]


async def test_payloads_are_encoded_as_json_or_sent_as_is(fake_mqtt: FakeMqtt) -> None:
    """Dicts and schema objects become JSON; str and bytes go unchanged."""
    async with MqttConnector("broker", link=fake_mqtt.link) as connector:
        await connector.publish("t/dict", {"a": 1, "b": [True, None]})
        await connector.publish("t/schema", StatusMessage(status="online"))
        await connector.publish("t/str", "héllo")
        await connector.publish("t/bytes", b"\x00\x01", retain=True)
        await connector.flush(5)
    assert sent_qos0(fake_mqtt) == [
        ("t/dict", b'{"a":1,"b":[true,null]}', False),
        ("t/schema", b'{"status":"online"}', False),
        ("t/str", "héllo".encode(), False),
        ("t/bytes", b"\x00\x01", True),
    ]


@fast_path_only
async def test_qos1_is_settled_by_its_puback(fake_mqtt: FakeMqtt) -> None:
    """MQTT 3.1.1 QoS 1 messages carry their own packet ids; each PUBACK settles one."""
    async with MqttConnector("broker", source_id="s", link=fake_mqtt.link) as connector:
        paho = fake_mqtt.paho
        paho.auto_ack = False
        await connector.publish("t/q1", {"x": 1}, qos=1, retain=True)
        await connector.publish("t/q1", {"x": 2}, qos=1)
        await _until_handed(fake_mqtt.client, 1)
        (_, blob) = paho.packets[-1]
        assert parse_publishes(blob) == [("t/q1", b'{"x":1}', True), ("t/q1", b'{"x":2}', False)]
        first, second = packet_ids(blob)
        paho.puback(first)
        assert connector.stats.published == 1
        assert connector.stats.buffered == 1
        paho.puback(second)
        await connector.flush(1)
        assert connector.stats.published == 2
        assert paho.acked_by_paho == []  # paho never saw our acknowledgements


async def test_qos1_over_mqtt5_goes_through_paho_publish(fake_mqtt: FakeMqtt) -> None:
    """With MQTT 5, QoS 1 uses paho's publish (which knows the v5 PUBACK format)."""
    async with MqttConnector("broker", protocol="5", link=fake_mqtt.link) as connector:
        await connector.publish("t/q1", {"x": 1}, qos=1, retain=True)
        await connector.flush(5)
        assert ("t/q1", b'{"x":1}', 1, True) in fake_mqtt.paho.published
        assert connector.stats.published == 1


async def test_empty_retained_payload_is_sent_empty(fake_mqtt: FakeMqtt) -> None:
    """An empty retained payload (which clears the topic) is not turned into JSON."""
    async with MqttConnector("broker", link=fake_mqtt.link) as connector:
        await connector.publish("t/clear", b"", retain=True)
        await connector.flush(5)
    assert sent_qos0(fake_mqtt) == [("t/clear", b"", True)]


async def test_publish_before_connect_is_a_counted_no_op(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing before connect() drops the message, counts it and logs, without raising."""
    connector = MqttConnector("broker", link=fake_mqtt.link)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.publish("t/x", {"a": 1})
    assert connector.stats.dropped == 1
    assert "not connected" in caplog.text
    assert fake_mqtt.clients == []


async def test_invalid_topic_and_qos_are_caller_errors(fake_mqtt: FakeMqtt) -> None:
    """Wildcards in a topic and an unknown QoS are programming errors, raised at once."""
    async with MqttConnector("broker", link=fake_mqtt.link) as connector:
        with pytest.raises(ValueError, match="qos"):
            await connector.publish("t/x", {}, qos=3)
        with pytest.raises(ValueError, match="wildcard"):
            await connector.publish("t/+", {})


async def test_full_buffer_drops_the_oldest_and_warns_once(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """While the connection is away, a full buffer keeps the newest messages, counting drops."""
    connector = MqttConnector(
        "broker", buffer_size=3, backoff_initial=60, backoff_max=60, link=fake_mqtt.link
    )
    fake_mqtt.fail_next(OSError("unreachable"), OSError("unreachable"))
    await connector.connect()
    assert not connector.is_connected
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        for n in range(10):
            await connector.publish("t/n", {"n": n})
    assert connector.stats.dropped == 7
    assert connector.stats.buffered == 3
    assert caplog.text.count("buffer full") == 1
    await connector.disconnect()
    assert connector.stats.dropped == 10  # what was still buffered is discarded and counted


async def test_unconfirmed_messages_are_resent_in_order_after_reconnect(
    fake_mqtt: FakeMqtt,
) -> None:
    """Messages handed over but not confirmed when the connection drops are sent again first."""
    connector = MqttConnector(
        "broker", backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    await connector.connect()
    first = fake_mqtt.client
    first.paho.auto_ack = False
    for n in range(3):
        await connector.publish("t/n", {"n": n})
    await _until_handed(first, 1)
    first.lose(None)
    for n in range(3, 5):
        await connector.publish("t/n", {"n": n})
    await connector.flush(5)
    resent = [
        payload
        for client in fake_mqtt.clients[1:]
        for run in client.paho.handed
        for topic, payload, _, _ in run
        if topic == "t/n"
    ]
    assert resent == [b'{"n":%d}' % n for n in range(5)]
    probe = next(run for run in fake_mqtt.clients[1].paho.handed if run[0][0] == "t/n")
    assert [payload for _, payload, _, _ in probe] == [b'{"n":0}']  # alone, until confirmed
    assert connector.stats.reconnects == 1
    await connector.disconnect()


async def test_a_message_that_breaks_every_connection_is_given_up(
    fake_mqtt: FakeMqtt, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that drops the connection on one message: only that one is lost, and counted."""
    FakeClient.poison = {b"poison"}
    connector = MqttConnector(
        "broker", backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    await connector.connect()
    for payload in ("before", "poison", "after"):
        await connector.publish("t/x", payload)
    await connector.flush(5)
    await connector.disconnect()
    delivered = [payload for _, payload, _ in sent_qos0(fake_mqtt)]  # in packets not broken
    assert list(dict.fromkeys(delivered)) == [b"before", b"after"]  # copies may be resent
    assert connector.stats.dropped == 1
    assert connector.stats.reconnects <= 5
    assert "gave up a message to 't/x'" in caplog.text


async def _until_handed(client: FakeClient, count: int) -> None:
    """Yield to the event loop until the fake client has been handed ``count`` runs of data."""
    for _ in range(1000):
        if len([run for run in client.paho.handed if run[0][0].startswith("t/")]) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the sender never handed the messages over")


async def test_flush_times_out_when_nothing_is_confirmed(fake_mqtt: FakeMqtt) -> None:
    """flush() raises FlushTimeoutError when the broker never confirms."""
    async with MqttConnector("broker", flush_timeout=0.05, link=fake_mqtt.link) as connector:
        fake_mqtt.paho.auto_ack = False
        await connector.publish("t/x", {"a": 1}, qos=1)
        with pytest.raises(FlushTimeoutError):
            await connector.flush(0.05)
        fake_mqtt.paho.ack_all()
        await connector.flush(1)
        assert connector.stats.buffered == 0


async def test_without_paho_internals_every_message_goes_through_publish(
    fake_mqtt: FakeMqtt, mocker: MockerFixture
) -> None:
    """If paho lacks what the fast path needs, messages go through its public publish()."""
    mocker.patch("cascade.connectors.mqtt._paho._link.fast_wire_supported", return_value=False)
    async with MqttConnector("broker", presence=False, link=fake_mqtt.link) as connector:
        for n in range(5):
            await connector.publish("t/slow", {"n": n}, qos=n % 2)
        await connector.flush(5)
        published = fake_mqtt.paho.published
        assert fake_mqtt.paho.packets == []
        assert [(t, raw, q) for t, raw, q, _ in published if t == "t/slow"] == [
            ("t/slow", b'{"n":%d}' % n, n % 2) for n in range(5)
        ]
        assert connector.stats.published >= 5
