"""A hung broker (SIGSTOP): publishing stays fast and disconnect() stays bounded."""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time

import aiomqtt
import pytest

import cascade.connectors.mqtt._client
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import Inbox, MosquittoBroker
from cascade.interfaces.connector_kit import timeout


async def test_publish_stays_fast_and_disconnect_is_bounded(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """With the broker frozen, publish() returns at once and disconnect() within its bound."""
    connector = MqttConnector(
        mosquitto_broker.host,
        mosquitto_broker.port,
        topic_prefix=prefix,
        buffer_size=5_000,
        flush_timeout=1.0,
        connect_timeout=2.0,
    )
    await connector.connect(require=True)
    mosquitto_broker.pause()
    try:
        durations = []
        payload = {"task": "t" * 150}
        for n in range(20_000):
            start = time.perf_counter()
            await connector.publish(f"{prefix}/data", payload, qos=n % 2)
            durations.append(time.perf_counter() - start)
        # generous bounds: the benchmark measures the real figures
        assert statistics.median(durations) < 0.001
        assert max(durations) < 0.5
        assert connector.stats.dropped > 0  # the buffer stayed bounded
        assert connector.stats.buffered <= 5_000 + connector.max_in_flight
        start = time.monotonic()
        await connector.disconnect()
        assert time.monotonic() - start < connector.flush_timeout + 2.0
        assert not connector.is_connected
    finally:
        mosquitto_broker.resume()
        await connector.disconnect()


async def test_connect_to_a_hung_broker_is_bounded(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """connect() waits at most connect_timeout when the broker accepts TCP but never answers."""
    mosquitto_broker.pause()
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, connect_timeout=1.0
    )
    try:
        start = time.monotonic()
        await connector.connect()
        assert time.monotonic() - start < 1.0 + 1.0
        assert not connector.is_connected
        await connector.publish(f"{prefix}/x", {"buffered": True})
        assert connector.stats.buffered == 1
    finally:
        mosquitto_broker.resume()
        await connector.disconnect()


async def test_unsubscribe_does_not_wait_for_a_hung_broker(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """unsubscribe() returns at once; its UNSUBSCRIBE still goes before a later SUBSCRIBE."""
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, connect_timeout=10.0
    )
    await connector.connect(require=True)
    try:
        first, second = Inbox(), Inbox()
        handle = await connector.subscribe(f"{prefix}/x", first)
        mosquitto_broker.pause()
        try:
            start = time.monotonic()
            await handle.unsubscribe()
            assert time.monotonic() - start < 1.0  # waiting for the UNSUBACK took connect_timeout
        finally:
            mosquitto_broker.resume()
        await connector.subscribe(f"{prefix}/x", second)
        await connector.publish(f"{prefix}/x", {"n": 1}, qos=1)
        assert (await second.next()).payload == {"n": 1}
        assert first.all == []
    finally:
        await connector.disconnect()


async def test_a_cancelled_subscribe_leaves_nothing_behind(
    mosquitto_broker: MosquittoBroker, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelled while its SUBACK is on the way: no subscription stays, and nothing is logged."""
    connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix)
    await connector.connect(require=True)
    try:
        got = Inbox()
        mosquitto_broker.pause()
        try:
            pending = asyncio.create_task(connector.subscribe(f"{prefix}/x", got))
            await asyncio.sleep(0)  # one loop turn: SUBSCRIBE queued, waiting for the SUBACK
            assert not pending.done()
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
        finally:
            mosquitto_broker.resume()
        await connector.subscribe(f"{prefix}/y", Inbox())  # a round trip behind that SUBACK
        await connector.publish(f"{prefix}/x", {"late": True}, qos=1)
        await connector.subscribe(f"{prefix}/z", Inbox())  # and one behind that message
        assert got.all == []
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    finally:
        await connector.disconnect()


async def test_disconnect_from_a_hung_broker_releases_the_connection(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """Socket buffers full, the DISCONNECT cannot be written: disconnect() still closes it all."""
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, flush_timeout=0.5
    )
    await connector.connect(require=True)
    client = connector._client
    assert client is not None
    mosquitto_broker.pause()
    try:
        payload = b"x" * 60_000
        for _ in range(400):  # 24 MB: more than both ends' socket buffers hold
            await connector.publish(f"{prefix}/bulk", payload)
        await asyncio.sleep(0)
        start = time.monotonic()
        await connector.disconnect()
        assert time.monotonic() - start < 0.5 + 2.0
        assert client._client._sock is None  # paho's socket closed
        assert client._misc_task is None or client._misc_task.done()
    finally:
        mosquitto_broker.resume()


async def test_a_cancelled_disconnect_still_disconnects(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """A disconnect() whose caller is cancelled mid-flush still stops everything."""
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, flush_timeout=1.0
    )
    await connector.connect(require=True)
    supervisor = connector._supervisor
    assert supervisor is not None
    mosquitto_broker.pause()
    try:
        await connector.publish(f"{prefix}/x", {"n": 1}, qos=1)  # never acknowledged: flush waits
        with pytest.raises(asyncio.TimeoutError):
            async with timeout(0.2):
                await connector.disconnect()
        await connector.disconnect()  # waits for the first one's shutdown
        assert supervisor.done()
        assert not connector.is_connected
        assert connector.stats.dropped == 1
    finally:
        mosquitto_broker.resume()


async def test_disconnect_during_a_slow_first_attempt_leaves_no_connection(
    mosquitto_broker: MosquittoBroker, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paho connects in a thread no cancel stops: disconnect() does not wait for it, and the
    connection the thread opens afterwards is closed, not left with its will at the broker."""
    started, release = threading.Event(), threading.Event()
    clients: list[aiomqtt.Client] = []
    original = aiomqtt.Client._client_connect

    def slow_connect(client: aiomqtt.Client) -> None:  # slow DNS or TCP, as it were
        clients.append(client)
        started.set()
        release.wait(10)
        original(client)

    closed = asyncio.Event()
    close = cascade.connectors.mqtt._client.close

    def closing(client: aiomqtt.Client) -> None:
        close(client)
        closed.set()

    monkeypatch.setattr(aiomqtt.Client, "_client_connect", slow_connect)
    monkeypatch.setattr(cascade.connectors.mqtt._client, "close", closing)
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, connect_timeout=5
    )
    connecting = asyncio.create_task(connector.connect())
    assert await asyncio.to_thread(started.wait, 5)
    async with timeout(2):
        await connector.disconnect()  # while the thread is still connecting
        await connecting
    release.set()
    async with timeout(5):
        await closed.wait()  # the thread, done, had its connection closed
    paho = clients[0]._client
    assert paho._sock is None
    misc = clients[0]._misc_task
    assert misc is None or misc.cancelled() or misc.done()
