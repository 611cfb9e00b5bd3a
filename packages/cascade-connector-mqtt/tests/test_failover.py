"""hosts=[...]: the nodes tried in order, the move to the next when one goes, bad entries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import ConnectError

Until = Callable[[Callable[[], object], str], Awaitable[None]]


def down(broker: FakeBroker, *hosts: str) -> set[str]:
    """Make attempts to these hosts fail as a dead node's do; the set can be changed later."""
    dead = set(hosts)

    async def before_connack(link: FakeLink) -> None:
        if link.settings.hostname in dead:
            raise ConnectError(link.settings.hostname, link.settings.port, "connection refused")

    broker.before_connack = before_connack
    return dead


def tried(broker: FakeBroker) -> list[str]:
    """The node of every attempt, in order."""
    return [f"{link.settings.hostname}:{link.settings.port}" for link in broker.links]


async def test_the_first_node_that_answers_is_used_in_order(broker: FakeBroker) -> None:
    """A down, B up: A then B, no delay between them, and hostname/port say B."""
    down(broker, "a")
    connector = MqttConnector(
        hosts=["a:1883", "b:1884", "c"], backoff_initial=60, backoff_max=60, link=broker
    )
    await connector.connect()
    assert connector.is_connected
    assert tried(broker) == ["a:1883", "b:1884"]
    assert (connector.hostname, connector.port) == ("b", 1884)
    assert connector.hosts == ("a:1883", "b:1884", "c:1883")
    await connector.disconnect()


async def test_a_lost_node_moves_to_the_next_and_resubscribes_there(
    broker: FakeBroker, until: Until, caplog: pytest.LogCaptureFixture
) -> None:
    """A goes: B is tried next, the subscription is made again on B, one INFO line names it."""
    connector = MqttConnector(
        hosts=["a", "b"], backoff_initial=0.001, backoff_max=0.001, link=broker
    )
    await connector.subscribe("cascade/constraints/#", lambda message: None)
    await connector.connect()
    first = broker.link
    assert first.settings.hostname == "a"
    dead = down(broker, "a")
    assert dead
    with caplog.at_level(logging.INFO, "cascade.connectors.mqtt"):
        first.lose()
        await until(lambda: "moved to" in caplog.text, "the move logged")
    assert tried(broker) == ["a:1883", "b:1883"]
    assert "cascade/constraints/#" in broker.link.filters
    moves = [r.getMessage() for r in caplog.records if "moved to" in r.getMessage()]
    assert moves == ["moved to broker node b:1883 (from a:1883)"]
    assert [r.levelno for r in caplog.records if "moved to" in r.getMessage()] == [logging.INFO]
    await connector.disconnect()


async def test_unconfirmed_messages_are_resent_on_the_next_node(
    until: Until,
) -> None:
    """What A did not confirm before it went is sent again on B."""
    broker = FakeBroker(auto_settle=False)
    connector = MqttConnector(
        hosts=["a", "b"], backoff_initial=0.001, backoff_max=0.001, presence=False, link=broker
    )
    await connector.connect()
    first = broker.link
    await connector.publish("cascade/events/x", b"one", qos=1)
    await until(lambda: any(s.payload == b"one" for s in first.sent), "sent on a")
    down(broker, "a")
    first.lose()
    await until(lambda: broker.link is not first and broker.link.connected(), "on b")
    await until(lambda: any(s.payload == b"one" for s in broker.link.sent), "resent on b")
    assert broker.link.settings.hostname == "b"
    broker.link.settle_all()
    await connector.disconnect()


async def test_every_node_down_waits_the_backoff_between_rounds(broker: FakeBroker) -> None:
    """A round of failures tries each node once, then waits (here far away)."""
    down(broker, "a", "b")
    connector = MqttConnector(hosts=["a", "b"], backoff_initial=30, backoff_max=60, link=broker)
    await connector.connect()
    assert not connector.is_connected
    assert tried(broker) == ["a:1883", "b:1883"]
    await connector.disconnect()


async def test_require_tries_each_node_and_names_them_all(broker: FakeBroker) -> None:
    """connect(require=True) goes on to B; with every node down it says why for each."""
    down(broker, "a")
    connector = MqttConnector(hosts=["a", "b"], link=broker)
    await connector.connect(require=True)
    assert connector.hostname == "b"
    await connector.disconnect()

    other = FakeBroker()
    down(other, "a", "b")
    connector = MqttConnector(
        hosts=["a", "b"], connect_timeout=0.3, backoff_initial=0.01, link=other
    )
    with pytest.raises(ConnectError) as info:
        await connector.connect(require=True)
    assert "a:1883: connection refused" in info.value.reason
    assert "b:1883: connection refused" in info.value.reason
    assert len(other.links) > 2  # rounds again within the timeout
    assert not connector.is_connected


async def test_require_keeps_trying_until_a_node_comes_back(broker: FakeBroker) -> None:
    """Mid-failover every node refuses for a moment: require=True waits for one, in time."""
    dead = down(broker, "a", "b")

    async def revive(link: FakeLink) -> None:
        if len(broker.links) >= 4:
            dead.discard("b")
        if link.settings.hostname in dead:
            raise ConnectError(link.settings.hostname, link.settings.port, "connection refused")

    broker.before_connack = revive
    connector = MqttConnector(
        hosts=["a", "b"], connect_timeout=5, backoff_initial=0.01, link=broker
    )
    await connector.connect(require=True)
    assert connector.hostname == "b"
    await connector.disconnect()


@pytest.mark.parametrize(
    ("hosts", "words"),
    [
        (["a:0"], "port in host 'a:0'"),
        (["a:x"], "port in host 'a:x'"),
        (["a:"], "ends with ':'"),
        ([""], "not a host name"),
        (["a b"], "not a host name"),
        (["[::1"], "without closing"),
        ([], "hosts is empty"),
        (["a", "a:1883"], "names a node twice"),
    ],
)
def test_bad_hosts_are_refused_naming_the_entry(
    broker: FakeBroker, hosts: list[str], words: str
) -> None:
    """Each bad entry is a ValueError that says what is wrong with it."""
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        MqttConnector(hosts=hosts, link=broker)


def test_hostname_or_hosts_not_both(broker: FakeBroker) -> None:
    """One of the two, and a single string is not a list of hosts."""
    with pytest.raises(TypeError):
        MqttConnector("a", hosts=["b"], link=broker)
    with pytest.raises(TypeError):
        MqttConnector(link=broker)
    with pytest.raises(TypeError):
        MqttConnector(hosts="a:1883", link=broker)


def test_one_hostname_is_one_node(broker: FakeBroker) -> None:
    """hostname/port as before; IPv6 entries in brackets."""
    connector = MqttConnector("broker", 1999, link=broker)
    assert (connector.hostname, connector.port, connector.hosts) == (
        "broker",
        1999,
        ("broker:1999",),
    )
    ipv6 = MqttConnector(hosts=["[::1]:1884", "::1"], link=broker)
    assert ipv6.hosts == ("[::1]:1884", "[::1]:1883")
