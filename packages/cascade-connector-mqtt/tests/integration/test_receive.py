"""Receiving at the broker's pace: bursts taken in full, a slow subscriber sheds, counted."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.testkit import BrokerEndpoint

pytestmark = pytest.mark.skipif(
    os.environ.get("CASCADE_MQTT_FAST_PATH", "on").lower() in ("0", "off", "false", "no"),
    reason="reading in bulk is part of the fast path (CASCADE_MQTT_FAST_PATH=off reads through "
    "paho, packet by packet, as aiomqtt does: slower, same messages)",
)


async def _publish(endpoint: BrokerEndpoint, *parts: tuple[str, range], size: int = 200) -> None:
    """Publish ``{"n": n}`` (padded to about ``size`` bytes) for each ``n`` of each part, in order,
    through one connection: MQTT orders messages per publisher only (RabbitMQ interleaves two
    publishers' messages, even when the first has flushed before the second connects)."""
    count = sum(len(numbers) for _, numbers in parts)
    writer = MqttConnector(endpoint.host, endpoint.port, presence=False, buffer_size=count + 10)
    async with writer:
        for topic, numbers in parts:
            for n in numbers:
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
        await _publish(mqtt_broker, (f"{prefix}/burst", range(50_000)))
        await asyncio.wait_for(complete.wait(), 60)
        assert reader.stats.shed == 0
    assert got == list(range(50_000))


class _HeldBurst:
    """Holds a reader's loop (its callback waits on the first message, ``{"start": true}``)
    while ``burst`` publishes, so that what the burst sends queues up in the reader's link."""

    def __init__(self, endpoint: BrokerEndpoint, topic: str) -> None:
        self.endpoint, self.topic = endpoint, topic
        self.holding, self.published = threading.Event(), threading.Event()

    def held(self, message: Message) -> bool:
        """Whether ``message`` is the one that holds the loop (held until the burst is sent)."""
        if "start" not in message.payload:
            return False
        self.holding.set()
        assert self.published.wait(60)
        return True

    async def run(self, burst: Callable[[], Awaitable[None]], complete: asyncio.Event) -> None:
        """Publish the first message, then ``burst`` while the loop is held; wait for
        ``complete``."""

        async def publish() -> None:
            endpoint = self.endpoint
            async with MqttConnector(endpoint.host, endpoint.port, presence=False) as writer:
                await writer.publish(self.topic, {"start": True})
                await asyncio.to_thread(self.holding.wait, 60)
            await burst()
            self.published.set()

        publisher = threading.Thread(target=asyncio.run, args=(publish(),))
        publisher.start()
        try:
            await asyncio.wait_for(complete.wait(), 60)
        finally:
            self.published.set()
            await asyncio.to_thread(publisher.join, 60)


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
    held = _HeldBurst(mqtt_broker, topic)
    reader = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, receive_buffer=64 * 1024
    )

    def on_message(message: Message) -> None:
        if held.held(message):
            return
        if message.topic == status:
            statuses.append(message.payload["n"])
            return
        got.append(message.payload["n"])
        if len(got) + reader.stats.shed == 5_000:
            complete.set()

    async def burst() -> None:
        await _publish(
            mqtt_broker,
            (topic, range(2_500)),  # ~1 MB: the kernel buffers it
            (status, range(10)),
            (topic, range(2_500, 5_000)),
        )

    async with reader:
        await reader.subscribe(f"{prefix}/#", on_message)
        await held.run(burst, complete)
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
    held = _HeldBurst(mqtt_broker, topic)
    reader = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, receive_buffer=64 * 1024
    )

    def on_message(message: Message) -> None:
        if held.held(message):
            return
        if message.topic == status:
            statuses.append(message.payload["n"])
            return
        got.append(message.payload["n"])
        if len(got) + reader.stats.shed == 100:
            complete.set()

    async def burst() -> None:
        await _publish(
            mqtt_broker,
            (status, range(2_000)),  # ~440 kB: past the bound
            (topic, range(100)),  # ~22 kB: within it
        )

    async with reader:
        await reader.subscribe(f"{prefix}/#", on_message)
        await held.run(burst, complete)
        shed = reader.stats.shed
    assert shed == 0
    assert got == list(range(100))
    assert statuses == list(range(2_000))
