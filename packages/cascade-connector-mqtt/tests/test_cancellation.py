"""Cancelling a caller while the connector waits must cancel it, whatever else completes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pytest_mock import MockerFixture

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing._fake_client import (
    FakeClient,
    FakeMqtt,
    Info,
    connector_tasks,
)
from cascade.interfaces import ConnectError, Message
from cascade.interfaces.connector_kit import timeout


async def test_cancel_as_the_marker_returns_still_cancels_subscribe(
    fake_mqtt: FakeMqtt, mocker: MockerFixture
) -> None:
    """A cancellation arriving as subscribe's marker comes back is not swallowed.

    asyncio.wait_for before Python 3.12 returned the result and dropped the
    cancellation in this case: a Ctrl-C during `cascade watch`'s subscribe
    was lost and the command never ended.
    """
    async with MqttConnector(
        "broker", source_id="s", presence=False, link=fake_mqtt.link
    ) as connector:
        sent = asyncio.Event()
        tokens: list[bytes] = []

        publish = fake_mqtt.paho.publish

        def hold(topic: str, payload: bytes, qos: int, retain: bool) -> Info:
            if topic != fake_mqtt.marker_topic:  # e.g. the capability probe's clearing
                return publish(topic, payload, qos, retain)
            tokens.append(payload)  # the marker is held back: the test returns it
            sent.set()
            return Info(0, 999)

        def on_sync(phase: str) -> None:
            if phase == "end":  # the reader has just resolved the marker subscribe() waits on
                subscribing.cancel()

        mocker.patch.object(fake_mqtt.paho, "publish", side_effect=hold)
        subscribing = asyncio.create_task(
            connector.subscribe("a/#", lambda m: None, on_sync=on_sync)
        )
        await sent.wait()
        (token,) = tokens
        fake_mqtt.client.deliver(fake_mqtt.marker_topic, token)
        with pytest.raises(asyncio.CancelledError):
            await subscribing


def swallow_one_cancel_before_connack(mocker: MockerFixture) -> asyncio.Event:
    """Make the fake's connect wait for CONNACK and drop the first cancellation, as wait_for can.

    Returns an event set once a connection attempt is waiting.
    """
    entered = asyncio.Event()

    async def slow_connack(self: FakeClient) -> FakeClient:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # what wait_for does in that race
            await asyncio.Event().wait()
        await self._lock.acquire()
        self._connected.set_result(None)
        return self

    mocker.patch.object(FakeClient, "__aenter__", slow_connack)
    return entered


async def test_disconnect_ends_a_supervisor_whose_cancellation_was_lost(
    fake_mqtt: FakeMqtt, mocker: MockerFixture
) -> None:
    """disconnect() returns even if one cancellation is swallowed inside the MQTT client.

    aiomqtt's connect awaits CONNACK through asyncio.wait_for, which (before
    3.12) drops a cancellation arriving with the CONNACK: seen on 3.10 when a
    hung broker resumed just before disconnect().
    """
    entered = swallow_one_cancel_before_connack(mocker)
    connector = MqttConnector("broker", source_id="s", connect_timeout=30, link=fake_mqtt.link)
    connecting = asyncio.create_task(connector.connect())
    await entered.wait()
    async with timeout(5):
        await connector.disconnect()
    assert not connector.is_connected
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting


async def test_disconnect_from_a_callback_returns_and_completes(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """disconnect() in a subscription callback (the reader task) is not cancelled by itself.

    It used to cancel the supervisor, which cancelled the reader it ran in:
    the callback got CancelledError and the buffer was never cleared.
    """
    connector = MqttConnector("broker", source_id="s", flush_timeout=0.01, link=fake_mqtt.link)
    outcome: list[str] = []
    called = asyncio.Event()

    async def callback(message: Message) -> None:
        try:
            await connector.disconnect()
            outcome.append("returned")
            await asyncio.sleep(0)  # the callback can still await after it
        except BaseException as exc:
            outcome.append(repr(exc))
            raise
        finally:
            called.set()

    await connector.connect()
    await connector.subscribe("t/cb", callback)
    (reader,) = (t for t in connector_tasks() if t.get_name() == "cascade-mqtt-reader")
    fake_mqtt.paho.auto_ack = False  # these stay unconfirmed: disconnect discards them
    for n in range(3):
        await connector.publish("t/x", {"n": n}, qos=1)
    fake_mqtt.client.deliver("t/cb", b"{}")
    await called.wait()
    await asyncio.wait({reader})
    assert outcome == ["returned"]
    assert not reader.cancelled()
    assert reader.exception() is None
    assert connector.stats.dropped == 3
    assert "disconnect discarded 3 unsent messages" in caplog.text
    assert not connector_tasks()
    assert not connector.is_connected
    assert fake_mqtt.paho.disconnect_calls == 1  # closed gracefully


async def test_disconnect_closes_a_required_connection_whose_cancellation_was_lost(
    fake_mqtt: FakeMqtt, mocker: MockerFixture
) -> None:
    """A CONNACK that beats disconnect()'s cancellation still ends connect(require=True)."""
    entered = swallow_one_cancel_before_connack(mocker)
    connector = MqttConnector("broker", source_id="s", connect_timeout=30, link=fake_mqtt.link)
    connecting = asyncio.create_task(connector.connect(require=True))
    await entered.wait()
    async with timeout(5):
        await connector.disconnect()
        with pytest.raises(ConnectError, match="disconnect"):
            await connecting
    assert not connector_tasks()
    assert fake_mqtt.paho.disconnect_calls == 1  # closed gracefully: no will
