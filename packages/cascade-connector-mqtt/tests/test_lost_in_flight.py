"""What was in flight when a connection was lost: sent again one message at a time until the
broker confirms one, given up when it alone breaks every connection, forgotten by disconnect().

The messages here are QoS 1, each settled by its own PUBACK, which the test gives or withholds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink

MAX_LOSSES = 3  # connections lost in a row with one message alone in flight before it is given up


@pytest.fixture
def broker() -> FakeBroker:
    """A broker that acknowledges nothing unless the test says so."""
    return FakeBroker(auto_settle=False)


def reconnecting(broker: FakeBroker) -> MqttConnector:
    """A connector that reconnects within a millisecond."""
    return MqttConnector(
        "broker", presence=False, backoff_initial=0.001, backoff_max=0.001, link=broker
    )


async def eventually(condition: Callable[[], object], what: str, timeout: float = 5) -> None:
    """Wait until ``condition()`` holds (reconnections wait a timer); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.001)


def data_writes(link: FakeLink) -> list[list[bytes]]:
    """The payloads of each write of messages to ``t/...`` topics handed to ``link``."""
    return [[m.payload for m in write] for write in link.writes if write[0].topic.startswith("t/")]


async def handed(broker: FakeBroker, connection: int, payload: bytes) -> FakeLink:
    """The link of the ``connection``-th connection (from 0), once ``payload`` was handed to it."""

    def arrived() -> bool:
        links = broker.links
        return len(links) > connection and any(m.payload == payload for m in links[connection].sent)

    await eventually(arrived, f"{payload!r} handed to connection {connection}")
    return broker.links[connection]


def settle(link: FakeLink, payload: bytes) -> None:
    """The broker's PUBACK of ``payload``."""
    (mid,) = (m.mid for m in link.sent if m.payload == payload)
    link.settle(mid)


async def test_a_message_lost_alone_max_losses_times_in_a_row_is_given_up(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Lost once, then sent alone (the probe) and lost MAX_LOSSES times: dropped, counted, said.

    A broker may close the connection on a message it refuses: sent for ever, that message
    would stall everything behind it.
    """
    connector = reconnecting(broker)
    await connector.connect()
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.publish("t/x", b"a", qos=1)
        for connection in range(1 + MAX_LOSSES):
            assert connector.stats.dropped == 0
            link = await handed(broker, connection, b"a")
            assert data_writes(link) == [[b"a"]]
            link.lose()
        await eventually(lambda: connector.stats.dropped == 1, "a given up")
    assert "gave up a message to 't/x'" in caplog.text
    assert f"each of the {MAX_LOSSES} times" in caplog.text
    await connector.publish("t/x", b"b", qos=1)
    link = await handed(broker, 1 + MAX_LOSSES, b"b")
    settle(link, b"b")
    await connector.flush(5)
    assert data_writes(link) == [[b"b"]]
    assert (connector.stats.published, connector.stats.dropped) == (1, 1)
    await connector.disconnect()


async def test_each_message_has_its_own_count_of_losses(broker: FakeBroker) -> None:
    """a lost alone twice, then confirmed; b lost alone twice: nothing given up.

    A count shared by the messages would reach MAX_LOSSES at b's first loss alone.
    """
    connector = reconnecting(broker)
    await connector.connect()
    await connector.publish("t/x", b"a", qos=1)
    await connector.publish("t/x", b"b", qos=1)
    link = await handed(broker, 0, b"b")
    assert data_writes(link) == [[b"a", b"b"]]  # together: no loss is counted for either
    link.lose()
    for connection in (1, 2):
        link = await handed(broker, connection, b"a")
        assert data_writes(link) == [[b"a"]]  # the probe, alone
        link.lose()
    link = await handed(broker, 3, b"a")
    settle(link, b"a")  # the broker takes it: the rest goes at once
    await handed(broker, 3, b"b")
    assert data_writes(link) == [[b"a"], [b"b"]]
    link.lose()
    for connection in (4, 5):
        link = await handed(broker, connection, b"b")
        assert data_writes(link) == [[b"b"]]
        if connection == 4:
            link.lose()
    settle(link, b"b")
    await connector.flush(5)
    assert (connector.stats.published, connector.stats.dropped) == (2, 0)
    await connector.disconnect()


async def test_disconnect_forgets_the_probe_with_the_messages(broker: FakeBroker) -> None:
    """After a lost connection and disconnect(), the next connect() sends a full window at once."""
    connector = MqttConnector(
        "broker", presence=False, backoff_initial=60, backoff_max=60, link=broker
    )
    await connector.connect()
    await connector.publish("t/x", b"lost", qos=1)
    first = await handed(broker, 0, b"lost")
    first.lose()  # the next attempt is a minute away
    await eventually(lambda: first.closed, "the lost connection closed")
    await connector.disconnect()
    assert connector.stats.dropped == 1  # discarded, and counted
    broker.auto_settle = True
    await connector.connect()
    for payload in (b"1", b"2", b"3"):
        await connector.publish("t/x", payload, qos=1)
    await connector.flush(5)
    assert data_writes(broker.link) == [[b"1", b"2", b"3"]]
    assert (connector.stats.published, connector.stats.dropped) == (3, 1)
    await connector.disconnect()
