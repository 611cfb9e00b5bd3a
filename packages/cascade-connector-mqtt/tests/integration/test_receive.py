"""Receiving at the broker's pace: bursts taken in full, a slow subscriber sheds, counted."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import BrokerEndpoint

pytestmark = pytest.mark.skipif(
    os.environ.get("CASCADE_MQTT_FAST_PATH", "on").lower() in ("0", "off", "false", "no"),
    reason="reading in bulk is part of the fast path (CASCADE_MQTT_FAST_PATH=off reads through "
    "paho, packet by packet, as aiomqtt does: slower, same messages)",
)


async def _publish(
    endpoint: BrokerEndpoint, topic: str, count: int, size: int, *, first: int = 0
) -> None:
    writer = MqttConnector(endpoint.host, endpoint.port, presence=False, buffer_size=count + 10)
    async with writer:
        for n in range(first, first + count):
            await writer.publish(topic, b'{"n":%d,"pad":"%b"}' % (n, b"x" * size))
        await writer.flush(30)


async def test_a_burst_is_taken_in_full(mqtt_broker: BrokerEndpoint, prefix: str) -> None:
    """50,000 QoS 0 messages as fast as a publisher can send: a plain subscriber gets them all."""
    got: list[int] = []
    complete = asyncio.Event()

    def on_message(message: Message) -> None:
        got.append(message.payload["n"])
        if len(got) == 50_000:
            complete.set()

    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as reader:
        await reader.subscribe(f"{prefix}/burst", on_message)
        await _publish(mqtt_broker, f"{prefix}/burst", 50_000, 200)
        await asyncio.wait_for(complete.wait(), 60)
        assert reader.stats.shed == 0
    assert got == list(range(50_000))


async def test_a_slow_subscriber_sheds_the_oldest_and_counts_them(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """A callback that holds the loop while a burst of telemetry arrives: past receive_buffer the
    oldest live telemetry is shed and counted; every other one is delivered, and so is every
    message of another kind in the burst (a status: QoS 0 on a clean session too)."""
    topic = f"{prefix}/telemetry/o/p/r/events"
    status = f"{prefix}/status/engine-1"
    statuses: list[int] = []
    got: list[int] = []
    complete = asyncio.Event()
    holding, published = threading.Event(), threading.Event()
    reader = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, receive_buffer=64 * 1024
    )

    def on_message(message: Message) -> None:
        if "start" in message.payload:  # hold the loop until the whole burst was sent
            holding.set()
            assert published.wait(60)
            return
        if message.topic == status:
            statuses.append(message.payload["n"])
            return
        got.append(message.payload["n"])
        if len(got) + reader.stats.shed == 5_000:
            complete.set()

    def publish_burst() -> None:
        async def burst() -> None:
            async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as writer:
                await writer.publish(topic, {"start": True})
                await asyncio.to_thread(holding.wait, 60)
            await _publish(mqtt_broker, topic, 2_500, 200)  # ~1 MB: the kernel buffers it
            await _publish(mqtt_broker, status, 10, 200)
            await _publish(mqtt_broker, topic, 2_500, 200, first=2_500)
            published.set()

        asyncio.run(burst())

    async with reader:
        await reader.subscribe(f"{prefix}/#", on_message)
        publisher = threading.Thread(target=publish_burst)
        publisher.start()
        try:
            await asyncio.wait_for(complete.wait(), 60)
        finally:
            published.set()
            await asyncio.to_thread(publisher.join, 60)
        shed = reader.stats.shed
    assert shed > 0
    assert len(got) + shed == 5_000  # each one delivered or counted, never neither
    assert got == sorted(set(got))  # in order, none twice
    assert got[-1] == 4_999  # the oldest went; the newest are kept
    assert statuses == list(range(10))  # in the middle of the burst, yet none shed


async def test_what_it_may_not_shed_does_not_make_it_shed_telemetry(
    mqtt_broker: BrokerEndpoint, prefix: str
) -> None:
    """Statuses far past receive_buffer wait first (a reader that starts beside a fleet gets
    its retained statuses and summaries so), then a little telemetry: only telemetry counts
    towards the bound, so none of it is shed, and every status is delivered in order too (a
    shed walked past every waiting status for each message that came, a quadratic cost)."""
    status = f"{prefix}/status/engine-1"
    topic = f"{prefix}/telemetry/o/p/r/events"
    statuses: list[int] = []
    got: list[int] = []
    complete = asyncio.Event()
    holding, published = threading.Event(), threading.Event()
    reader = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, receive_buffer=64 * 1024
    )

    def on_message(message: Message) -> None:
        if "start" in message.payload:
            holding.set()
            assert published.wait(60)
            return
        if message.topic == status:
            statuses.append(message.payload["n"])
            return
        got.append(message.payload["n"])
        if len(got) + reader.stats.shed == 100:
            complete.set()

    def publish_burst() -> None:
        async def burst() -> None:
            async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as writer:
                await writer.publish(topic, {"start": True})
                await asyncio.to_thread(holding.wait, 60)
            await _publish(mqtt_broker, status, 2_000, 200)  # ~440 kB: past the bound
            await _publish(mqtt_broker, topic, 100, 200)  # ~22 kB: within it
            published.set()

        asyncio.run(burst())

    async with reader:
        await reader.subscribe(f"{prefix}/#", on_message)
        publisher = threading.Thread(target=publish_burst)
        publisher.start()
        try:
            await asyncio.wait_for(complete.wait(), 60)
        finally:
            published.set()
            await asyncio.to_thread(publisher.join, 60)
        shed = reader.stats.shed
    assert shed == 0
    assert got == list(range(100))
    assert statuses == list(range(2_000))
