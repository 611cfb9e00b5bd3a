"""connect(): bounded and silent by default, raising with a reason when required."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import ConnectRefusedError, MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import ConnectError

ConnectorTasks = Callable[[], set[asyncio.Task[Any]]]


def refused(port: int = 1883) -> ConnectError:
    """What a link raises when nothing listens on the broker's port."""
    return ConnectError("broker", port, "connection refused")


async def test_require_raises_connect_error_naming_host_port_and_cause(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """With require=True a connection refused until connect_timeout is spent raises
    ConnectError (after several attempts) and leaves nothing running."""
    broker.fail_next(*[refused(1999)] * 10_000)
    connector = MqttConnector(
        "broker", 1999, link=broker, connect_timeout=1.0, backoff_initial=0.01, backoff_max=0.02
    )  # 1 s: room for several attempts on a loaded 2-core machine (0.2 s saw two under CI)
    with pytest.raises(ConnectError) as info:
        await connector.connect(require=True)
    assert (info.value.host, info.value.port) == ("broker", 1999)
    assert "connection refused" in info.value.reason
    assert "attempts within 1 s" in info.value.reason
    assert len(broker.links) > 2
    assert "broker:1999" in str(info.value)
    assert not connector.is_connected
    assert not connector_tasks()
    await connector.disconnect()  # harmless


async def test_require_tries_one_node_again_within_connect_timeout(broker: FakeBroker) -> None:
    """A node that refused or closed the handshake may be back in a moment: tried again."""
    broker.fail_next(refused(), ConnectError("broker", 1883, "closed during the handshake"))
    connector = MqttConnector("broker", link=broker, backoff_initial=0.01, backoff_max=0.02)
    await connector.connect(require=True)
    assert connector.is_connected
    assert len(broker.links) == 3
    await connector.disconnect()


async def test_bad_credentials_raise_a_refusal(broker: FakeBroker) -> None:
    """A CONNACK refusal becomes ConnectRefusedError saying what was refused."""
    broker.fail_next(ConnectRefusedError("broker", 1883, "bad user name or password"))
    with pytest.raises(ConnectRefusedError, match="bad user name or password"):
        await MqttConnector("broker", link=broker).connect(require=True)


async def test_without_require_connect_returns_and_keeps_trying(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Default connect() swallows the failure, logs it, and connects on a later attempt."""
    broker.fail_next(refused())
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        assert await connector.wait_connected(5)
    assert len(broker.links) == 2
    assert "connection refused" in caplog.text
    await connector.disconnect()


async def test_a_refusal_is_retried_at_the_capped_interval(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused CONNACK is logged as an error and the next try waits the maximum backoff."""
    broker.fail_next(ConnectRefusedError("broker", 1883, "not authorised"))
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=60, link=broker)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
    assert not connector.is_connected
    assert len(broker.links) == 1  # no hot loop: the retry is far away
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "not authorised" in errors[0].getMessage()
    await connector.disconnect()


async def test_connect_and_disconnect_are_idempotent(broker: FakeBroker) -> None:
    """Calling either twice does nothing more; connect after disconnect reconnects."""
    connector = MqttConnector("broker", link=broker)
    await connector.connect()
    await connector.connect()
    assert len(broker.links) == 1
    await connector.disconnect()
    await connector.disconnect()
    await connector.connect()
    assert connector.is_connected
    assert len(broker.links) == 2
    await connector.disconnect()


async def test_concurrent_connects_start_one_connection(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """A connect() while another is still connecting waits for it: one link, one supervisor."""
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow_connack(link: FakeLink) -> None:
        asked.set()
        await answer.wait()

    broker.before_connack = slow_connack
    connector = MqttConnector("broker", link=broker)
    first = asyncio.create_task(connector.connect(require=True))
    second = asyncio.create_task(connector.connect(require=True))
    await asked.wait()  # the first is waiting for its CONNACK, the second has started too
    answer.set()
    await asyncio.gather(first, second)
    assert len(broker.links) == 1
    assert connector.is_connected
    await connector.disconnect()
    assert not connector_tasks()


async def test_disconnect_while_a_required_connect_waits_wins(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """disconnect() during connect(require=True) ends it with ConnectError; nothing keeps running.

    It used to return at once (the connector was not started yet), and the
    connection came up afterwards and stayed.
    """
    asked = asyncio.Event()

    async def held_connack(link: FakeLink) -> None:
        asked.set()
        await asyncio.Event().wait()  # only disconnect() ends this wait

    broker.before_connack = held_connack
    connector = MqttConnector("broker", connect_timeout=30, link=broker)
    first = asyncio.create_task(connector.connect(require=True))
    second = asyncio.create_task(connector.connect(require=True))  # waits for the first
    await asked.wait()
    async with bounded(5):
        await connector.disconnect()
        for connecting in (first, second):
            with pytest.raises(ConnectError, match="disconnect"):
                await connecting
    assert len(broker.links) == 1
    assert not connector.is_connected
    assert not connector_tasks()


async def test_disconnect_while_connect_waits_ends_the_wait(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """connect() without require returns as soon as disconnect() stops the first attempt."""
    asked = asyncio.Event()

    async def held_connack(link: FakeLink) -> None:
        asked.set()
        await asyncio.Event().wait()

    broker.before_connack = held_connack
    connector = MqttConnector("broker", connect_timeout=30, link=broker)
    connecting = asyncio.create_task(connector.connect())
    await asked.wait()
    async with bounded(5):
        await connector.disconnect()
        await connecting
    assert not connector.is_connected
    assert not connector_tasks()


async def test_a_required_connect_behind_a_failing_connect_raises(broker: FakeBroker) -> None:
    """connect(require=True) waiting behind a connect() whose attempt failed raises, not returns."""
    broker.fail_next(*[refused()] * 5)  # the retries fail too
    connector = MqttConnector("broker", connect_timeout=1, backoff_initial=10, link=broker)
    background = asyncio.create_task(connector.connect())
    await asyncio.sleep(0)  # one loop turn: the background connect() holds the lock
    assert not background.done()
    with pytest.raises(ConnectError, match="earlier connect"):
        await connector.connect(require=True)
    await background
    assert not connector.is_connected
    await connector.disconnect()


async def test_connect_during_a_disconnect_waits_for_it(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """connect() while disconnect() flushes starts after it: one connection, nothing leaked."""
    connector = MqttConnector("broker", source_id="s", flush_timeout=0.2, link=broker)
    await connector.connect()
    (first,) = (t for t in connector_tasks() if t.get_name() == "cascade-mqtt")
    broker.link.auto_settle = False  # nothing is acknowledged: the flush waits
    await connector.publish("t", b"x", qos=1)
    stopping = asyncio.create_task(connector.disconnect())
    await asyncio.sleep(0)  # disconnect() is in its flush
    assert not stopping.done()
    async with bounded(5):
        await connector.connect()
        await stopping
    assert first is not None
    assert first.done()
    assert connector.is_connected
    await connector.disconnect()
    assert not connector_tasks()


async def test_a_required_connect_cancelled_as_its_connack_arrives_closes_it(
    broker: FakeBroker, connector_tasks: ConnectorTasks
) -> None:
    """Cancelled just when its attempt succeeded, connect(require=True) closes that connection."""
    connector = MqttConnector("broker", link=broker)
    connecting = asyncio.create_task(connector.connect(require=True))
    await asyncio.sleep(0)  # connect() has started its attempt, in a task of its own
    (opening,) = (t for t in asyncio.all_tasks() if t.get_name() == "cascade-mqtt-connect")
    async with bounded(5):
        # one loop turn at a time: cancel in the turn the attempt succeeds, before connect() resumes
        while not opening.done():  # noqa: ASYNC110
            await asyncio.sleep(0)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert len(broker.links) == 1
    assert broker.link.closed
    assert broker.link.disconnects == 1  # graceful: no will for a live source
    assert not connector_tasks()


def test_one_connector_in_two_event_loops(broker: FakeBroker) -> None:
    """Reusable across asyncio.run() calls (locks are bound to a loop), even undisconnected."""
    connector = MqttConnector("broker", link=broker)

    async def concurrent_connects(disconnect: bool) -> bool:
        await asyncio.gather(connector.connect(), connector.connect())
        connected = connector.is_connected
        if disconnect:
            await connector.disconnect()
        return connected

    assert asyncio.run(concurrent_connects(disconnect=True))
    assert asyncio.run(concurrent_connects(disconnect=False))  # ends with the loop, undisconnected
    assert asyncio.run(concurrent_connects(disconnect=True))  # starts afresh
    assert len(broker.links) == 3
