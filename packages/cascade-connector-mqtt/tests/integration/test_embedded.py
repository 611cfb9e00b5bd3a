"""The embedded broker (amqtt) stands in for mosquitto in-process."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt import EmbeddedBroker, MqttConnector
from cascade.testkit import (
    NOT_THE_SHARED_BROKER,
    Inbox,
    ThreadedEmbeddedBroker,
    skip_on_family,
)

# amqtt's shutdown can leave a server-side connection (an asyncio stream) to the garbage
# collector after its loop closed: collected here, its warning is this module's, not the
# next test's. Our own connector closes its sockets (the other suites would say otherwise).
pytestmark = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER),
    skip_on_family("nats", NOT_THE_SHARED_BROKER),
]


@pytest.fixture(autouse=True, scope="module")
def _collect_amqtt_leftovers() -> Iterator[None]:  # after the tests' loops have closed
    yield
    gc.collect()


async def test_embedded_broker_carries_presence_and_messages(prefix: str) -> None:
    """Birth, retained messages and live messages all work through the embedded broker."""
    async with EmbeddedBroker() as broker:
        assert broker.port > 0
        assert not broker.supports_mqtt5
        async with (
            MqttConnector(
                broker.host, broker.port, topic_prefix=prefix, source_id="engine"
            ) as engine,
            MqttConnector(broker.host, broker.port, topic_prefix=prefix) as watcher,
        ):
            status, events = Inbox(), Inbox()
            await watcher.subscribe(f"{prefix}/status/engine", status)
            assert (await status.next()).payload["status"] == "online"
            await watcher.subscribe(f"{prefix}/events", events)
            await engine.publish(f"{prefix}/events", {"n": 1})
            assert (await events.next()).payload == {"n": 1}
            await engine.disconnect()
            # amqtt may hand a late subscriber the retained birth twice when the source also
            # subscribes to its own status topic (to catch a stale will): skip repeats
            offline = await status.until(lambda m: m.payload["status"] == "offline")
            assert offline.payload["reason"] == "shutdown"


async def test_threaded_embedded_broker_serves_from_its_own_thread(prefix: str) -> None:
    """The fixture's fallback broker runs on its own loop and stops cleanly."""
    broker = ThreadedEmbeddedBroker()
    await asyncio.to_thread(broker.start)
    try:
        async with MqttConnector(broker.host, broker.port, topic_prefix=prefix) as connector:
            inbox = Inbox()
            await connector.subscribe(f"{prefix}/echo", inbox)
            await connector.publish(f"{prefix}/echo", {"ok": True}, qos=1)
            assert (await inbox.next()).payload == {"ok": True}
    finally:
        await asyncio.to_thread(broker.stop)
