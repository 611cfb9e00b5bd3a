"""connect(): bounded and silent by default, raising with a reason when required."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import pytest
from aiomqtt.exceptions import MqttConnectError, MqttError

from cascade.connectors.mqtt import ConnectRefusedError, MqttConnector
from cascade.connectors.mqtt._paho._connect import disable_nagle
from cascade.connectors.mqtt._paho._reasons import describe_connect_failure
from cascade.connectors.mqtt.testing._fake_client import FakeClient, FakeMqtt, connector_tasks
from cascade.interfaces import ConnectError
from cascade.interfaces.connector_kit import timeout


def wrapped(cause: BaseException) -> MqttError:
    """An MqttError as aiomqtt raises it for a socket error: the cause only as context."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise MqttError(str(exc)) from None
    except MqttError as error:
        return error


async def test_require_raises_connect_error_naming_host_port_and_cause(
    fake_mqtt: FakeMqtt,
) -> None:
    """With require=True a refused connection raises ConnectError and leaves nothing running."""
    fake_mqtt.fail_next(wrapped(ConnectionRefusedError(111, "Connection refused")))
    connector = MqttConnector("broker", 1999, link=fake_mqtt.link)
    with pytest.raises(ConnectError) as info:
        await connector.connect(require=True)
    assert (info.value.host, info.value.port) == ("broker", 1999)
    assert "connection refused" in info.value.reason
    assert "broker:1999" in str(info.value)
    assert not connector.is_connected
    assert not connector_tasks()
    await connector.disconnect()  # harmless


async def test_bad_credentials_raise_a_refusal(fake_mqtt: FakeMqtt) -> None:
    """A CONNACK refusal becomes ConnectRefusedError saying what was refused."""
    fake_mqtt.fail_next(MqttConnectError(4))
    with pytest.raises(ConnectRefusedError, match="bad user name or password"):
        await MqttConnector("broker", link=fake_mqtt.link).connect(require=True)


async def test_without_require_connect_returns_and_keeps_trying(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """Default connect() swallows the failure, logs it, and connects on a later attempt."""
    fake_mqtt.fail_next(wrapped(ConnectionRefusedError(111, "Connection refused")))
    connector = MqttConnector(
        "broker", backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        assert await connector.wait_connected(5)
    assert len(fake_mqtt.clients) == 2
    assert "connection refused" in caplog.text
    await connector.disconnect()


async def test_a_refusal_is_retried_at_the_capped_interval(
    fake_mqtt: FakeMqtt, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused CONNACK is logged as an error and the next try waits the maximum backoff."""
    fake_mqtt.fail_next(MqttConnectError(5))
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=60, link=fake_mqtt.link)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
    assert not connector.is_connected
    assert len(fake_mqtt.clients) == 1  # no hot loop: the retry is far away
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "not authorised" in errors[0].getMessage()
    await connector.disconnect()


async def test_connect_and_disconnect_are_idempotent(fake_mqtt: FakeMqtt) -> None:
    """Calling either twice does nothing more; connect after disconnect reconnects."""
    connector = MqttConnector("broker", link=fake_mqtt.link)
    await connector.connect()
    await connector.connect()
    assert len(fake_mqtt.clients) == 1
    await connector.disconnect()
    await connector.disconnect()
    await connector.connect()
    assert connector.is_connected
    assert len(fake_mqtt.clients) == 2
    await connector.disconnect()


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "unknown host"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS failure"),
        (OSError(101, "Network is unreachable"), "unreachable"),
        (TimeoutError(), "no answer"),
    ],
)
def test_failures_are_described_in_words(cause: BaseException, words: str) -> None:
    """Socket and TLS errors hidden behind aiomqtt's MqttError are named."""
    assert words in describe_connect_failure(wrapped(cause), 5.0)


@pytest.mark.parametrize("host", ["a" * 300, "\udcff"])
async def test_a_host_the_resolver_cannot_encode_is_a_connect_error(host: str) -> None:
    """A label over 63 characters or bytes that were not UTF-8: a ConnectError saying so, not
    the resolver's UnicodeError (it never reaches the network)."""
    connector = MqttConnector(host, presence=False, connect_timeout=2)
    try:
        with pytest.raises(ConnectError, match="not a host name the resolver can look up"):
            await connector.connect(require=True)
    finally:
        await connector.disconnect()


def test_nagle_is_left_alone_where_the_transport_is_not_tcp() -> None:
    """A Unix socket refuses TCP_NODELAY and a websocket wrapper has no setsockopt: no error."""
    left, right = socket.socketpair()
    with left, right:
        disable_nagle(left)
    disable_nagle(object())


async def test_concurrent_connects_start_one_connection(
    fake_mqtt: FakeMqtt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connect() while another is still connecting waits for it: one client, one supervisor."""
    asked, answer = asyncio.Event(), asyncio.Event()
    enter = FakeClient.__aenter__

    async def slow_connack(client: FakeClient) -> FakeClient:
        asked.set()
        await answer.wait()
        return await enter(client)

    monkeypatch.setattr(FakeClient, "__aenter__", slow_connack)
    connector = MqttConnector("broker", link=fake_mqtt.link)
    first = asyncio.create_task(connector.connect(require=True))
    second = asyncio.create_task(connector.connect(require=True))
    await asked.wait()  # the first is waiting for its CONNACK, the second has started too
    answer.set()
    await asyncio.gather(first, second)
    assert len(fake_mqtt.clients) == 1
    assert connector.is_connected
    await connector.disconnect()
    assert not connector_tasks()


async def test_disconnect_while_a_required_connect_waits_wins(
    fake_mqtt: FakeMqtt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """disconnect() during connect(require=True) ends it with ConnectError; nothing keeps running.

    It used to return at once (the connector was not started yet), and the
    connection came up afterwards and stayed.
    """
    asked = asyncio.Event()
    enter = FakeClient.__aenter__

    async def held_connack(client: FakeClient) -> FakeClient:
        asked.set()
        await asyncio.Event().wait()  # only disconnect() ends this wait
        return await enter(client)

    monkeypatch.setattr(FakeClient, "__aenter__", held_connack)
    connector = MqttConnector("broker", connect_timeout=30, link=fake_mqtt.link)
    first = asyncio.create_task(connector.connect(require=True))
    second = asyncio.create_task(connector.connect(require=True))  # waits for the first
    await asked.wait()
    async with timeout(5):
        await connector.disconnect()
        for connecting in (first, second):
            with pytest.raises(ConnectError, match="disconnect"):
                await connecting
    assert len(fake_mqtt.clients) == 1
    assert not connector.is_connected
    assert not connector_tasks()
    assert not connector_tasks()


async def test_disconnect_while_connect_waits_ends_the_wait(
    fake_mqtt: FakeMqtt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connect() without require returns as soon as disconnect() stops the first attempt."""
    asked = asyncio.Event()

    async def held_connack(client: FakeClient) -> FakeClient:
        asked.set()
        await asyncio.Event().wait()
        return client

    monkeypatch.setattr(FakeClient, "__aenter__", held_connack)
    connector = MqttConnector("broker", connect_timeout=30, link=fake_mqtt.link)
    connecting = asyncio.create_task(connector.connect())
    await asked.wait()
    async with timeout(5):
        await connector.disconnect()
        await connecting
    assert not connector.is_connected
    assert not connector_tasks()


async def test_a_required_connect_behind_a_failing_connect_raises(fake_mqtt: FakeMqtt) -> None:
    """connect(require=True) waiting behind a connect() whose attempt failed raises, not returns."""
    fake_mqtt.fail_next(*[wrapped(ConnectionRefusedError())] * 5)  # the retries fail too
    connector = MqttConnector("broker", connect_timeout=1, backoff_initial=10, link=fake_mqtt.link)
    background = asyncio.create_task(connector.connect())
    await asyncio.sleep(0)  # one loop turn: the background connect() holds the lock
    assert not background.done()
    with pytest.raises(ConnectError, match="earlier connect"):
        await connector.connect(require=True)
    await background
    assert not connector.is_connected
    await connector.disconnect()


async def test_connect_during_a_disconnect_waits_for_it(fake_mqtt: FakeMqtt) -> None:
    """connect() while disconnect() flushes starts after it: one connection, nothing leaked."""
    connector = MqttConnector("broker", source_id="s", flush_timeout=0.2, link=fake_mqtt.link)
    await connector.connect()
    (first,) = (t for t in connector_tasks() if t.get_name() == "cascade-mqtt")
    await connector.publish("t", b"x", qos=1)  # the fake never acknowledges: flush waits
    stopping = asyncio.create_task(connector.disconnect())
    await asyncio.sleep(0)  # disconnect() is in its flush
    assert not stopping.done()
    async with timeout(5):
        await connector.connect()
        await stopping
    assert first is not None
    assert first.done()
    assert connector.is_connected
    await connector.disconnect()
    assert not connector_tasks()


async def test_a_required_connect_cancelled_as_its_connack_arrives_closes_it(
    fake_mqtt: FakeMqtt,
) -> None:
    """Cancelled just when its attempt succeeded, connect(require=True) closes that connection."""
    connector = MqttConnector("broker", link=fake_mqtt.link)
    connecting = asyncio.create_task(connector.connect(require=True))
    await asyncio.sleep(0)  # connect() has started its attempt, in a task of its own
    (opening,) = (t for t in asyncio.all_tasks() if t.get_name() == "cascade-mqtt-connect")
    async with timeout(5):
        # one loop turn at a time: cancel in the turn the attempt succeeds, before connect() resumes
        while not opening.done():  # noqa: ASYNC110
            await asyncio.sleep(0)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert len(fake_mqtt.clients) == 1
    assert not fake_mqtt.paho.connected
    assert fake_mqtt.paho.disconnect_calls == 1  # graceful: no will for a live source
    assert not connector_tasks()


def test_one_connector_in_two_event_loops(fake_mqtt: FakeMqtt) -> None:
    """Reusable across asyncio.run() calls (locks are bound to a loop), even undisconnected."""
    connector = MqttConnector("broker", link=fake_mqtt.link)

    async def concurrent_connects(disconnect: bool) -> bool:
        await asyncio.gather(connector.connect(), connector.connect())
        connected = connector.is_connected
        if disconnect:
            await connector.disconnect()
        return connected

    assert asyncio.run(concurrent_connects(disconnect=True))
    assert asyncio.run(concurrent_connects(disconnect=False))  # ends with the loop, undisconnected
    assert asyncio.run(concurrent_connects(disconnect=True))  # starts afresh
    assert len(fake_mqtt.clients) == 3
