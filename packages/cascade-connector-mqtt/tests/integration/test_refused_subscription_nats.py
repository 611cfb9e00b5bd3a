"""A filter NATS refuses (SUBACK 0x80: a '.' in a filter): subscribed again with backoff on the
same connection, never synced while refused, counted and warned once; the rest works.

mosquitto 2.0's ACL file does not refuse a SUBSCRIBE (it grants it and filters delivery), so
the refusal is made on a NATS node, where it is certain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, SyncPhase
from cascade.testkit import NO_NATS, NatsNode, nats_server_path


async def eventually(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def node() -> Iterator[NatsNode]:
    """A private NATS node (JetStream, MQTT), whatever the family."""
    if nats_server_path() is None:
        pytest.skip(NO_NATS)
    with NatsNode() as server:
        yield server


async def test_a_refused_filter_is_retried_unsynced_and_the_others_work(
    node: NatsNode, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """subscribe() returns after connect_timeout with only "begin"; refusals go on being
    counted on the same connection (no reconnection); another filter receives."""
    refused = "odd.filter/#"
    connector = MqttConnector(
        node.host,
        node.port,
        topic_prefix=prefix,
        source_id="refused",
        connect_timeout=1.0,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    phases: list[SyncPhase] = []
    got: list[Message] = []
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        async with connector:
            await connector.subscribe(refused, got.append, on_sync=phases.append)
            assert phases == ["begin"]
            await connector.subscribe(f"{prefix}/ok/#", got.append)
            await connector.publish(f"{prefix}/ok/1", {"ok": 1}, qos=1)
            await eventually(lambda: got, "the granted filter's message")
            await eventually(lambda: connector.stats.subscriptions_refused >= 3, "3 refusals")
            assert phases == ["begin"]
            assert connector.is_connected
    assert connector.stats.reconnects == 0
    assert [m.topic for m in got] == [f"{prefix}/ok/1"]
    warned = [m for m in caplog.messages if "refused the subscription" in m]
    assert len(warned) == 1
    assert repr(refused) in warned[0]
