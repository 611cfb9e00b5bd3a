"""A SUBSCRIBE on which the broker closes the connection (RabbitMQ 3.x, for a filter its topic
permissions deny): after such a loss filters are subscribed one SUBSCRIBE at a time, and a filter
whose lone SUBSCRIBE loses the connection MAX_LOSSES times is given up, while every other
subscription works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import Message

MAX_LOSSES = 3  # connections lost with a filter's SUBSCRIBE alone outstanding before it is given up


def reconnecting(broker: FakeBroker) -> MqttConnector:
    """A connector that reconnects within a millisecond."""
    return MqttConnector(
        "broker", source_id="s", backoff_initial=0.001, backoff_max=0.001, link=broker
    )


async def eventually(condition: Callable[[], object], what: str, timeout: float = 5) -> None:
    """Wait until ``condition()`` holds (reconnections wait a timer); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.001)


def alone(links: list[FakeLink], topic_filter: str) -> int:
    """How many SUBSCRIBEs, over all ``links``, carried ``topic_filter`` and nothing else."""
    return sum(packet == [topic_filter] for link in links for packet in link.subscribes)


def gave_up(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "gave up the subscription" in r.getMessage()]


async def test_a_filter_whose_subscribe_closes_the_connection_is_given_up(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Subscribed with the others first, then alone MAX_LOSSES times: given up, counted, said once.

    The other filters are subscribed one SUBSCRIBE at a time meanwhile, and work.
    """
    broker.hang_up_on = {"t/denied"}
    connector = reconnecting(broker)
    received: list[bytes] = []
    await connector.subscribe("t/ok", lambda m: received.append(m.raw))
    await connector.subscribe("t/denied", lambda m: received.append(m.raw))
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.connect()
        await eventually(lambda: connector.stats.subscriptions_given_up == 1, "t/denied given up")
        assert await connector.wait_connected(5)
    first, *probed, last = broker.links
    assert any({"t/ok", "t/denied"} <= set(packet) for packet in first.subscribes)
    assert len(probed) == MAX_LOSSES
    for link in probed:  # one filter per SUBSCRIBE, up to the one that closes the connection
        assert all(len(packet) == 1 for packet in link.subscribes)
        assert link.subscribes[-1] == ["t/denied"]
    assert alone(broker.links, "t/denied") == MAX_LOSSES
    assert "t/ok" in last.filters
    assert "t/denied" not in [f for packet in last.subscribes for f in packet]
    (warning,) = gave_up(caplog)
    assert "'t/denied'" in warning
    assert f"each of the {MAX_LOSSES} times" in warning
    assert "does its ACL deny this client that filter?" in warning
    broker.route("t/ok", b"{}")
    await eventually(lambda: received == [b"{}"], "a message on t/ok")
    await connector.disconnect()


async def test_a_subscribe_made_online_returns_and_its_filter_is_given_up(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """subscribe() of a filter whose SUBSCRIBE closes the connection returns (no hang); the lone
    SUBSCRIBEs that follow on the next connections give it up, and subscribing to it again while
    it is given up sends nothing."""
    broker.hang_up_on = {"t/denied"}
    connector = reconnecting(broker)
    await connector.connect()
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await asyncio.wait_for(connector.subscribe("t/denied", lambda m: None), 1)
        await eventually(lambda: connector.stats.subscriptions_given_up == 1, "t/denied given up")
        assert await connector.wait_connected(5)
        assert alone(broker.links, "t/denied") == MAX_LOSSES
        links = len(broker.links)
        await asyncio.wait_for(connector.subscribe("t/denied", lambda m: None), 1)
        assert alone(broker.links, "t/denied") == MAX_LOSSES
        assert len(broker.links) == links
        assert broker.link.connected()
    assert len(gave_up(caplog)) == 1
    await connector.disconnect()


async def test_a_filter_subscribed_in_between_starts_its_count_again(broker: FakeBroker) -> None:
    """Lost alone MAX_LOSSES - 1 times, then granted: given up only MAX_LOSSES losses later."""
    broker.hang_up_on = {"t/flaky"}
    granted = asyncio.Event()

    async def hold(link: FakeLink) -> None:  # the attempt after the second loss, until granted
        if alone(broker.links, "t/flaky") == MAX_LOSSES - 1:
            await granted.wait()

    broker.before_connack = hold
    connector = reconnecting(broker)
    await connector.connect()
    await connector.subscribe("t/flaky", lambda m: None)  # alone: the first loss
    await eventually(lambda: alone(broker.links, "t/flaky") == MAX_LOSSES - 1, "lost twice alone")
    broker.hang_up_on = set()
    granted.set()
    await eventually(lambda: "t/flaky" in broker.link.filters, "t/flaky granted")
    broker.hang_up_on = {"t/flaky"}
    broker.link.lose()  # the next connection subscribes it with the others, then alone
    await eventually(lambda: connector.stats.subscriptions_given_up == 1, "t/flaky given up")
    # its losses alone, before and after it was granted (itself alone), are not added up
    assert alone(broker.links, "t/flaky") == (MAX_LOSSES - 1) + 1 + MAX_LOSSES
    await connector.disconnect()


async def test_a_given_up_filter_is_not_unsubscribed_and_may_be_subscribed_anew(
    broker: FakeBroker,
) -> None:
    """Its last subscription gone, a given-up filter sends no UNSUBSCRIBE (it has none at the
    broker); a later subscribe() to it tries again."""
    broker.hang_up_on = {"t/denied"}
    connector = reconnecting(broker)
    await connector.connect()
    subscription = await connector.subscribe("t/denied", lambda m: None)
    await eventually(lambda: connector.stats.subscriptions_given_up == 1, "t/denied given up")
    assert await connector.wait_connected(5)
    await subscription.unsubscribe()
    assert "t/denied" not in broker.link.unsubscribed
    broker.hang_up_on = set()
    messages: list[Message] = []
    await connector.subscribe("t/denied", messages.append)
    assert "t/denied" in broker.link.filters
    broker.route("t/denied", b"{}")
    await eventually(lambda: len(messages) == 1, "a message on t/denied")
    await connector.disconnect()


async def test_a_subscribe_the_broker_leaves_unanswered_is_counted_as_it_returns(
    broker: FakeBroker,
) -> None:
    """subscribe() of a filter on which the connection goes returns with it counted in
    ``subscriptions_cut`` (what a reader checks to say it cannot see), and only it."""
    connector = reconnecting(broker)
    await connector.connect()
    try:
        await connector.subscribe("t/ok", lambda m: None)
        assert connector.stats.subscriptions_cut == 0
        broker.hang_up_on = {"t/denied"}
        await connector.subscribe("t/denied", lambda m: None)
        assert connector.stats.subscriptions_cut >= 1
    finally:
        await connector.disconnect()
