"""hosts=[A, B] on two real mosquittos: A killed mid-stream, the connector carries on on B."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import ConnectError, Message
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_MOSQUITTO,
    Inbox,
    MosquittoBroker,
    mosquitto_path,
    skip_on_family,
)

pytestmark = skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))


@pytest.fixture
def nodes() -> Iterator[tuple[MosquittoBroker, MosquittoBroker]]:
    """Two private mosquittos, A and B: two nodes of one broker, as far as a client can tell."""
    if mosquitto_path() is None:
        pytest.skip(NO_MOSQUITTO)
    with MosquittoBroker() as a, MosquittoBroker() as b:
        yield a, b


def address(broker: MosquittoBroker) -> str:
    """``host:port`` of one node."""
    return f"{broker.host}:{broker.port}"


async def test_a_killed_node_is_followed_by_the_next(
    nodes: tuple[MosquittoBroker, MosquittoBroker],
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On A first; A killed: on B, B's retained message read, what was unconfirmed resent there."""
    a, b = nodes
    control = f"{prefix}/constraints/global"
    async with MqttConnector(b.host, b.port, source_id="ctl") as controller:
        await controller.publish(control, {"id": "pause-on-b", "type": "pause"}, 1, True)
        await controller.flush(5)
    engine = MqttConnector(
        hosts=[address(a), address(b)], topic_prefix=prefix, source_id="engine", backoff_max=0.5
    )
    await engine.connect(require=True)
    try:
        assert (engine.hostname, engine.port) == (a.host, a.port)
        controls = Inbox()
        await engine.subscribe(control, controls)
        assert controls.all == []  # A has no retained pause
        async with MqttConnector(b.host, b.port, topic_prefix=prefix) as reader:
            received = Inbox()
            await reader.subscribe(f"{prefix}/data/#", received)
            with caplog.at_level(logging.INFO, "cascade.connectors.mqtt"):
                a.kill()
                for n in range(100):  # while the connector finds A gone: buffered, resent
                    await engine.publish(f"{prefix}/data/x", {"n": n}, qos=1)
                again = await controls.next(15)
                assert again.payload["id"] == "pause-on-b"
                assert again.retain
                numbers = [(await received.next()).payload["n"] for _ in range(100)]
            assert sorted(set(numbers)) == list(range(100))
            assert (engine.hostname, engine.port) == (b.host, b.port)
            moves = [r for r in caplog.records if r.getMessage().startswith("moved to")]
            assert [(r.levelno, r.getMessage()) for r in moves] == [
                (logging.INFO, f"moved to broker node {address(b)} (from {address(a)})")
            ]
            assert engine.stats.dropped == 0
    finally:
        await engine.disconnect()


async def test_require_goes_on_to_a_node_that_answers(
    nodes: tuple[MosquittoBroker, MosquittoBroker], prefix: str
) -> None:
    """connect(require=True) with A down connects to B; with both down it names both."""
    a, b = nodes
    a.stop()
    connector = MqttConnector(hosts=[address(a), address(b)], topic_prefix=prefix)
    await connector.connect(require=True)
    assert connector.port == b.port
    await connector.disconnect()

    b.stop()
    connector = MqttConnector(hosts=[address(a), address(b)], connect_timeout=1)
    with pytest.raises(ConnectError) as info:
        await connector.connect(require=True)
    assert address(a) in info.value.reason
    assert address(b) in info.value.reason


async def test_the_standby_carries_qos0_until_the_next_node_is_served(
    nodes: tuple[MosquittoBroker, MosquittoBroker], prefix: str
) -> None:
    """standby=True, A killed: while the connector waits its backoff before trying B, its
    QoS 0 messages reach a reader on B through the standby connection; a QoS 1 message waits
    for the connection served on B, and the QoS 0 one after it too."""
    a, b = nodes
    engine = MqttConnector(
        hosts=[address(a), address(b)],
        topic_prefix=prefix,
        source_id="worker1.example.com",
        standby=True,
        backoff_initial=3,  # the move to B waits 1.5-3 s: the standby's time
        backoff_max=3,
    )
    await engine.connect(require=True)
    arrived: list[tuple[int, bool]] = []  # (n, whether the engine was served again by then)
    all_bridged, last = asyncio.Event(), asyncio.Event()

    def take(message: Message) -> None:
        arrived.append((message.payload["n"], engine.is_connected))
        if len(arrived) == 50:
            all_bridged.set()
        if message.payload["n"] == 51:
            last.set()

    try:
        async with MqttConnector(b.host, b.port, topic_prefix=prefix) as reader:
            await reader.subscribe(f"{prefix}/data/#", take)
            a.kill()
            for n in range(50):
                await engine.publish(f"{prefix}/data/x", {"n": n})
            await asyncio.wait_for(all_bridged.wait(), 10)
            assert sorted(n for n, _ in arrived) == list(range(50))
            assert not any(served for _, served in arrived)  # before the move to B
            assert engine.stats.bridged == 50
            await engine.publish(f"{prefix}/data/x", {"n": 50}, qos=1)
            await engine.publish(f"{prefix}/data/x", {"n": 51})
            await asyncio.wait_for(last.wait(), 15)
            assert [n for n, _ in arrived[50:]] == [50, 51]
            assert all(served for _, served in arrived[50:])  # on the connection served on B
            assert engine.stats.bridged == 50
            assert engine.stats.dropped == 0
    finally:
        await engine.disconnect()
