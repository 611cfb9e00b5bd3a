"""Scenario 2b: a connection dies with QoS 0 messages written, unconfirmed: resent, or counted."""

from __future__ import annotations

import asyncio
import time

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import OwnBroker, free_port

from .conftest import Figures, TcpProxy

MESSAGES = 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize("buffer_size", [10_000, MESSAGES // 2], ids=["resent", "counted"])
async def test_qos0_written_to_a_dying_connection_arrive_or_are_counted(
    own_broker: OwnBroker, prefix: str, figures: Figures, buffer_size: int
) -> None:
    """Written into a frozen connection, then cut: resent on the next one, or counted as dropped."""
    resend = buffer_size >= MESSAGES
    figures.scenario = "2b connection cut, QoS 0 unconfirmed" + (
        "" if resend else " (small buffer)"
    )
    broker = own_broker
    proxy = TcpProxy(broker.port, free_port())
    await proxy.start()
    topic = f"{prefix}/t/qos0"
    unique: set[bytes] = set()
    goal = MESSAGES + 1
    everything = asyncio.Event()

    def count(message: Message) -> None:
        unique.add(message.raw)
        if len(unique) >= goal:
            everything.set()

    subscriber = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    connector = MqttConnector(
        broker.host,
        proxy.port,
        topic_prefix=prefix,
        source_id="unconfirmed",
        buffer_size=buffer_size,
        backoff_initial=0.05,
        backoff_max=0.5,
    )
    try:
        await subscriber.connect(require=True)
        await subscriber.subscribe(f"{prefix}/t/#", count)
        await connector.connect(require=True)
        await connector.publish(topic, {"n": -1})
        await connector.flush(5)  # the connection works, and that one is confirmed
        assert connector.stats.published == 1
        proxy.freeze()  # from here on the broker hears nothing, and answers nothing
        for n in range(MESSAGES):
            await connector.publish(topic, {"n": n})
            await asyncio.sleep(0)  # handed over one by one: a small buffer holds them all too
        smallest = len(b'{"n":0}') + len(topic) + 4  # a PUBLISH's bytes, at least
        await asyncio.wait_for(proxy.wait_swallowed(MESSAGES * smallest), 10)
        assert connector.stats.published == 1  # written is not confirmed
        await proxy.cut()
        await proxy.restore()
        restored = time.monotonic()
        await connector.flush(10)
        dropped = connector.stats.dropped
        goal -= dropped  # the counted ones are not awaited
        if len(unique) >= goal:
            everything.set()
        await asyncio.wait_for(everything.wait(), 10)
        figures.seconds = time.monotonic() - restored
        stats = connector.stats
    finally:
        await connector.disconnect()
        await subscriber.disconnect()
        await proxy.close()
    emitted, delivered = MESSAGES + 1, len(unique)
    figures.emitted, figures.delivered, figures.dropped = emitted, delivered, dropped
    figures.what = "restore → all delivered"
    figures.notes.append(f"{stats.resent} resent, {stats.reconnects} reconnection(s)")
    assert stats.reconnects >= 1
    assert delivered + dropped == emitted
    assert stats.published + dropped == emitted
    if resend:
        assert dropped == 0
        assert stats.resent >= MESSAGES
    else:
        assert dropped == MESSAGES - buffer_size  # the oldest unconfirmed ones, counted
