"""A hung broker (SIGSTOP): publishing stays fast and disconnect() stays bounded."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

import pytest

from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.testkit import Inbox, MosquittoBroker


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


async def test_a_cancelled_disconnect_still_disconnects(
    mosquitto_broker: MosquittoBroker, prefix: str
) -> None:
    """A disconnect() whose caller is cancelled mid-flush still stops everything."""
    connector = MqttConnector(
        mosquitto_broker.host, mosquitto_broker.port, topic_prefix=prefix, flush_timeout=1.0
    )
    await connector.connect(require=True)
    running = {t for t in asyncio.all_tasks() if t.get_name() == "cascade-mqtt"}
    assert running
    mosquitto_broker.pause()
    try:
        await connector.publish(f"{prefix}/x", {"n": 1}, qos=1)  # never acknowledged: flush waits
        with pytest.raises(asyncio.TimeoutError):
            async with bounded(0.2):
                await connector.disconnect()
        await connector.disconnect()  # waits for the first one's shutdown
        assert all(task.done() for task in running)
        assert not connector.is_connected
        assert connector.stats.dropped == 1
    finally:
        mosquitto_broker.resume()
