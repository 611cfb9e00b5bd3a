"""standby=True: a second connection to the next node carries QoS 0 while none is served."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink

Until = Callable[[Callable[[], object], str], Awaitable[None]]


def standbys(broker: FakeBroker) -> list[FakeLink]:
    """The standby's links: the ones opened without a will (the connector's presence is on)."""
    return [link for link in broker.links if link.settings.will is None]


def served(broker: FakeBroker) -> list[FakeLink]:
    """The served connections' links (they carry the will)."""
    return [link for link in broker.links if link.settings.will is not None]


def hold_reconnects(broker: FakeBroker) -> asyncio.Event:
    """Hold every served connection's attempt after the first until the event is set, as a
    cluster's surviving node holds a CONNECT while it elects; the standby is not held."""
    release = asyncio.Event()

    async def before_connack(link: FakeLink) -> None:
        if link.settings.will is not None and len(served(broker)) > 1:
            await release.wait()

    broker.before_connack = before_connack
    return release


def payloads(link: FakeLink) -> list[bytes]:
    return [sent.payload for sent in link.sent if sent.topic.startswith("cascade/events/")]


async def test_the_standby_is_kept_to_the_next_node_without_will_or_subscriptions(
    broker: FakeBroker, until: Until
) -> None:
    connector = MqttConnector(hosts=["a", "b"], client_id="engine-1", standby=True, link=broker)
    await connector.subscribe("cascade/constraints/#", lambda message: None)
    await connector.connect()
    await until(lambda: standbys(broker) and standbys(broker)[0].connected(), "the standby up")
    [primary] = served(broker)
    [standby] = standbys(broker)
    assert (primary.settings.hostname, standby.settings.hostname) == ("a", "b")
    assert standby.settings.client_id == "engine-1-standby"
    assert standby.settings.session_expiry is None
    assert standby.filters == []
    assert standby.sent == []  # no birth, no marker: nothing is sent while a node is served
    await connector.disconnect()
    assert standby.closed
    assert standby.disconnects == 1  # a clean DISCONNECT


async def test_qos0_goes_through_the_standby_while_no_connection_is_served(
    broker: FakeBroker, until: Until
) -> None:
    """a goes; while b holds the new CONNECT, QoS 0 goes through the standby in order; a QoS 1
    message stops it, and it and what follows go on the new connection, in order."""
    connector = MqttConnector(
        hosts=["a", "b"], standby=True, backoff_initial=0.001, backoff_max=0.001, link=broker
    )
    await connector.connect()
    await until(lambda: standbys(broker) and standbys(broker)[0].connected(), "the standby up")
    release = hold_reconnects(broker)
    [first] = served(broker)
    [standby] = standbys(broker)
    first.lose()
    await until(lambda: len(served(broker)) == 2, "the new connection attempted (and held)")
    for payload in (b"1", b"2", b"3"):
        await connector.publish("cascade/events/x", payload)
    await until(lambda: payloads(standby) == [b"1", b"2", b"3"], "bridged")
    await until(lambda: connector.stats.bridged == 3, "settled once written")
    await connector.publish("cascade/events/x", b"4", qos=1)
    await connector.publish("cascade/events/x", b"5")
    release.set()
    second = served(broker)[1]
    await until(lambda: payloads(second) == [b"4", b"5"], "the rest on the new connection")
    assert payloads(standby) == [b"1", b"2", b"3"]
    assert second.settings.hostname == "b"
    await connector.flush(5)  # the new connection's confirmation of b"5" comes after a timer
    assert connector.stats.published == 5
    await until(
        lambda: [link.settings.hostname for link in standbys(broker)] == ["b", "a"],
        "the standby moved to the node after b",
    )
    await connector.disconnect()


async def test_what_the_standby_did_not_write_goes_on_the_new_connection(until: Until) -> None:
    """The standby goes with runs unwritten: they wait in front of the queue, and the new
    connection sends them first."""
    broker = FakeBroker(auto_settle=False)
    connector = MqttConnector(
        hosts=["a", "b"],
        standby=True,
        presence=False,
        backoff_initial=0.001,
        backoff_max=0.001,
        link=broker,
    )

    async def held(link: FakeLink) -> None:
        if link.settings.hostname == "b" and link.settings.client_id is None and attempts:
            await release.wait()

    release = asyncio.Event()
    attempts: list[FakeLink] = []
    await connector.connect()
    [first] = broker.links
    await until(lambda: len(broker.links) == 2 and broker.links[1].connected(), "standby up")
    standby = broker.links[1]
    broker.before_connack = held
    attempts.append(first)
    first.lose()
    for payload in (b"1", b"2"):
        await connector.publish("cascade/events/x", payload)
    await until(lambda: payloads(standby) == [b"1", b"2"], "bridged, not written")
    assert connector.stats.bridged == 0
    standby.lose()
    release.set()
    await until(
        lambda: any(payloads(link) == [b"1", b"2"] for link in broker.links[2:]),
        "sent again on another connection",
    )
    assert connector.stats.bridged == 0
    await connector.disconnect()


async def test_standby_needs_several_nodes() -> None:
    with pytest.raises(ValueError, match="standby=True needs several nodes"):
        MqttConnector("a", standby=True, link=FakeBroker())
