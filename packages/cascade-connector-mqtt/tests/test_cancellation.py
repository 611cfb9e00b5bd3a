"""Cancelling a caller while the connector waits must cancel it, whatever else completes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from pytest_mock import MockerFixture

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import ConnectError, Message

ConnectorTasks = Callable[[], set[asyncio.Task[Any]]]


async def test_cancel_as_the_marker_returns_still_cancels_subscribe(
    broker: FakeBroker, mocker: MockerFixture
) -> None:
    """A cancellation arriving as subscribe's marker comes back is not swallowed.

    asyncio.wait_for before Python 3.12 returned the result and dropped the
    cancellation in this case: a Ctrl-C during `cascade watch`'s subscribe
    was lost and the command never ended.
    """
    async with MqttConnector("broker", source_id="s", presence=False, link=broker) as connector:
        link = broker.link
        marker_topic = next(f for f in link.filters if "/_marker/" in f and not f.endswith("/+"))
        sent = asyncio.Event()
        tokens: list[bytes] = []

        publish = link.publish

        def hold(topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
            if topic != marker_topic:  # e.g. the capability probe's clearing
                return publish(topic, payload, qos, retain)
            tokens.append(payload)  # the marker is held back: the test returns it
            sent.set()
            return 999

        def on_sync(phase: str) -> None:
            if phase == "end":  # the reader has just resolved the marker subscribe() waits on
                subscribing.cancel()

        mocker.patch.object(link, "publish", side_effect=hold)
        subscribing = asyncio.create_task(
            connector.subscribe("a/#", lambda m: None, on_sync=on_sync)
        )
        await sent.wait()
        (token,) = tokens
        link.deliver(marker_topic, token)
        with pytest.raises(asyncio.CancelledError):
            await subscribing


def swallow_one_cancel_before_connack(broker: FakeBroker) -> asyncio.Event:
    """Make the link's open wait for CONNACK and drop the first cancellation, as wait_for can.

    Returns an event set once a connection attempt is waiting.
    """
    entered = asyncio.Event()

    async def slow_connack(link: FakeLink) -> None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # what wait_for does in that race
            await asyncio.Event().wait()

    broker.before_connack = slow_connack
    return entered


async def test_disconnect_ends_a_supervisor_whose_cancellation_was_lost(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """disconnect() returns even if one cancellation is swallowed inside the MQTT client.

    aiomqtt's connect awaits CONNACK through asyncio.wait_for, which (before
    3.12) drops a cancellation arriving with the CONNACK: seen on 3.10 when a
    hung broker resumed just before disconnect().
    """
    entered = swallow_one_cancel_before_connack(broker)
    connector = MqttConnector("broker", source_id="s", connect_timeout=30, link=broker)
    connecting = asyncio.create_task(connector.connect())
    await entered.wait()
    async with bounded(5):
        await connector.disconnect()
    assert not connector.is_connected
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting


async def test_disconnect_from_a_callback_returns_and_completes(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture, connector_tasks: ConnectorTasks
) -> None:
    """disconnect() in a subscription callback (the reader task) is not cancelled by itself.

    It used to cancel the supervisor, which cancelled the reader it ran in:
    the callback got CancelledError and the buffer was never cleared.
    """
    connector = MqttConnector("broker", source_id="s", flush_timeout=0.01, link=broker)
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
    broker.link.auto_settle = False  # these stay unconfirmed: disconnect discards them
    for n in range(3):
        await connector.publish("t/x", {"n": n}, qos=1)
    broker.link.deliver("t/cb", b"{}")
    await called.wait()
    await asyncio.wait({reader})
    assert outcome == ["returned"]
    assert not reader.cancelled()
    assert reader.exception() is None
    assert connector.stats.dropped == 3
    assert "disconnect discarded 3 unsent messages" in caplog.text
    assert not connector_tasks()
    assert not connector.is_connected
    assert broker.link.disconnects == 1  # closed gracefully


async def test_disconnect_closes_a_required_connection_whose_cancellation_was_lost(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """A CONNACK that beats disconnect()'s cancellation still ends connect(require=True)."""
    entered = swallow_one_cancel_before_connack(broker)
    connector = MqttConnector("broker", source_id="s", connect_timeout=30, link=broker)
    connecting = asyncio.create_task(connector.connect(require=True))
    await entered.wait()
    async with bounded(5):
        await connector.disconnect()
        with pytest.raises(ConnectError, match="disconnect"):
            await connecting
    assert not connector_tasks()
    assert broker.link.disconnects == 1  # closed gracefully: no will
