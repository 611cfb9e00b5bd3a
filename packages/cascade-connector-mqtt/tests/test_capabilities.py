"""What the connector learns of the broker: retained messages for wildcard subscriptions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.testkit import Inbox

ANSWER_SPACING = 0.25  # the connector answers roll calls at most every 0.25 s


@pytest.mark.parametrize("sends", [True, False])
async def test_the_first_connection_learns_whether_wildcards_get_retained_messages(
    broker: FakeBroker, sends: bool
) -> None:
    """Known once connected and subscribed; the probe is cleared and its filter dropped."""
    broker.retained_to_wildcards = sends
    connector = MqttConnector("broker", source_id="s", link=broker)
    before = connector.capabilities
    assert before.retained_to_wildcards is None
    async with connector:
        await connector.subscribe("t/#", lambda m: None)  # returns once its marker is back
        assert connector.capabilities.retained_to_wildcards is sends
        link = broker.link
        assert not [t for t in broker.retained if "/probe" in t]  # cleared
        (probe_filter,) = link.unsubscribed
        assert probe_filter.endswith("/+")
        assert probe_filter not in link.filters


async def test_a_probe_routed_after_its_subscribe_says_nothing_of_retained_messages(
    broker: FakeBroker,
) -> None:
    """RabbitMQ 3.x may route the probe after the SUBSCRIBE sent behind it (under load): that
    live copy (retain flag clear) is no retained message to a wildcard, and a writer of
    constraints taking it for one skipped the constraints index (a lost `cascade limit`)."""
    broker.retained_to_wildcards = False
    broker.routes_late = True
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("t/#", lambda m: None)
        assert connector.capabilities.retained_to_wildcards is False


async def test_the_probe_is_made_once_and_never_dispatched(broker: FakeBroker) -> None:
    """A reconnection does not probe again, and a '#' subscriber never sees the probe."""
    everything = Inbox()
    connector = MqttConnector(
        "broker", source_id="s", backoff_initial=0.001, backoff_max=0.001, link=broker
    )
    await connector.subscribe("#", everything)
    async with connector:
        await connector.subscribe("t/x", lambda m: None)
        broker.link.lose()
        for _ in range(1000):  # yield until the supervisor has made the next connection
            if len(broker.links) == 2 and connector.is_connected:
                break
            await asyncio.sleep(0)
        await connector.subscribe("t/y", lambda m: None)
        assert len(broker.links) == 2
        second = broker.links[1]
        assert not [f for f in second.filters + second.unsubscribed if f.endswith("/+")]
    assert not [m for m in everything.all if "/_marker/" in m.topic]


def _births(link: FakeLink, source: str) -> list[bytes]:
    return [m.payload for m in link.sent if m.topic == f"cascade/status/{source}"]


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):  # yield until the connector has reacted
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("sends", [True, False])
async def test_roll_calls_are_answered_only_where_retained_statuses_miss_wildcards(
    broker: FakeBroker, sends: bool
) -> None:
    """On a broker without retained-to-wildcards a connector with presence subscribes to
    {prefix}/rollcall and publishes its birth again when called; elsewhere it never subscribes."""
    broker.retained_to_wildcards = sends
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("t/#", lambda m: None)  # the probe is in
        link = broker.link
        if sends:
            assert "cascade/rollcall" not in link.filters
            return
        await _until(lambda: "cascade/rollcall" in link.filters)
        births = len(_births(link, "s"))
        broker.route("cascade/rollcall", b'{"rollcall":1}', 1, False)
        await _until(lambda: len(_births(link, "s")) == births + 1)
        assert json.loads(_births(link, "s")[-1])["status"] == "online"


async def test_a_flood_of_roll_calls_is_answered_at_a_bounded_rate(broker: FakeBroker) -> None:
    """100 roll calls at once: one answer now, one more at the end of ANSWER_SPACING."""
    broker.retained_to_wildcards = False
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("t/#", lambda m: None)
        link = broker.link
        await _until(lambda: "cascade/rollcall" in link.filters)
        births = len(_births(link, "s"))
        for _ in range(100):
            broker.route("cascade/rollcall", b'{"rollcall":1}', 1, False)
        await _until(lambda: len(_births(link, "s")) == births + 1)
        started = asyncio.get_running_loop().time()
        while len(_births(link, "s")) == births + 1:  # the trailing answer, due in the spacing
            assert asyncio.get_running_loop().time() - started < 5, "no trailing answer"
            await asyncio.sleep(0.01)
        assert asyncio.get_running_loop().time() - started >= ANSWER_SPACING * 0.9
        assert len(_births(link, "s")) == births + 2


async def test_a_connector_without_presence_never_answers(broker: FakeBroker) -> None:
    broker.retained_to_wildcards = False
    async with MqttConnector("broker", presence=False, link=broker) as connector:
        await connector.subscribe("cascade/status/+", lambda m: None)
        assert connector.capabilities.retained_to_wildcards is False
        assert "cascade/rollcall" not in broker.link.filters


@pytest.mark.parametrize("sends", [True, False])
async def test_capabilities_are_known_when_a_first_snapshot_ends(
    broker: FakeBroker, sends: bool
) -> None:
    """A subscription made before the first connection hears "end" only once the probe is in
    (the engine decides at "end" whether to read the constraints index)."""
    broker.retained_to_wildcards = sends
    connector = MqttConnector("broker", source_id="s", link=broker)
    known_at_end: list[bool | None] = []

    def on_sync(phase: str) -> None:
        if phase == "end":
            known_at_end.append(connector.capabilities.retained_to_wildcards)

    await connector.subscribe("cascade/constraints/#", lambda m: None, on_sync=on_sync)
    async with connector:
        await _until(lambda: bool(known_at_end))
    assert known_at_end == [sends]
