"""The subscribe loop: routing, wildcards, bad payloads, failing callbacks, unsubscribe."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import Message, status_topic
from cascade.testkit import Inbox

Until = Callable[[Callable[[], object], str], Awaitable[None]]


async def test_messages_reach_every_matching_subscription(broker: FakeBroker) -> None:
    """A message goes to each subscription whose filter matches, wildcards included."""
    got: dict[str, list[str]] = {"exact": [], "plus": [], "hash": [], "other": []}
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        await connector.subscribe("a/b/c", lambda m: got["exact"].append(m.topic))
        await connector.subscribe("a/+/c", lambda m: got["plus"].append(m.topic))
        await connector.subscribe("a/#", lambda m: got["hash"].append(m.topic))
        await connector.subscribe("z/#", lambda m: got["other"].append(m.topic))
        # a subscribe after the deliveries works as a barrier: its marker comes back last
        broker.link.deliver("a/b/c", b'{"k":1}')
        broker.link.deliver("a/x/y", b"{}")
        await connector.subscribe("barrier", lambda m: None)
    assert got == {
        "exact": ["a/b/c"],
        "plus": ["a/b/c"],
        "hash": ["a/b/c", "a/x/y"],
        "other": [],
    }


async def test_payload_is_decoded_json_and_empty_is_an_empty_object(broker: FakeBroker) -> None:
    """Callbacks get the decoded object; an empty (cleared) payload arrives as {}."""
    got: list[Message] = []
    async with MqttConnector("broker", link=broker) as connector:
        await connector.subscribe("c/#", got.append)
        broker.link.deliver("c/1", b'{"limit": 2}', qos=1, retain=True)
        broker.link.deliver("c/2", b"", retain=True)
        await connector.subscribe("barrier", lambda m: None)
    assert [(m.topic, m.payload, m.retain) for m in got] == [
        ("c/1", {"limit": 2}, True),
        ("c/2", {}, True),
    ]
    assert got[0].raw == b'{"limit": 2}'


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"bad utf-8 in a string": "\xff"}']
)
async def test_bad_payloads_are_rejected_counted_and_logged(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    """A payload that is not a JSON object never reaches a callback; it is counted and logged."""
    got: list[Message] = []
    with caplog.at_level(logging.WARNING):
        async with MqttConnector("broker", link=broker) as connector:
            await connector.subscribe("c/#", got.append)
            broker.link.deliver("c/bad", raw)
            broker.link.deliver("c/good", b"{}")
            await connector.subscribe("barrier", lambda m: None)
            assert connector.stats.rejected == 1
            assert connector.stats.received == 1
    assert [m.topic for m in got] == ["c/good"]
    assert "rejected message on 'c/bad'" in caplog.text


async def test_a_topic_the_link_cannot_take_is_counted_and_the_connection_goes_on(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A message the link reports unreadable is counted in ``rejected`` and logged; others flow."""
    got: list[str] = []
    async with MqttConnector("broker", link=broker) as connector:
        await connector.subscribe("c/#", lambda m: got.append(m.topic))
        with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
            broker.link.deliver("c/api_+", b"{}")  # RabbitMQ's rewrite of "c/api_*"
        broker.link.deliver("c/ok", b"{}")
        await connector.subscribe("barrier", lambda m: None)
        assert connector.stats.rejected == 1
        assert connector.is_connected
    assert got == ["c/ok"]
    assert "rejected a message on 'c/api_+'" in caplog.text


async def test_a_raising_callback_is_isolated(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged and counted; others and the loop carry on."""
    got: list[str] = []

    def broken(message: Message) -> None:
        raise RuntimeError("boom")

    async def working(message: Message) -> None:
        got.append(message.topic)

    with caplog.at_level(logging.ERROR):
        async with MqttConnector("broker", link=broker) as connector:
            await connector.subscribe("c/#", broken)
            await connector.subscribe("c/#", working)
            broker.link.deliver("c/1", b"{}")
            broker.link.deliver("c/2", b"{}")
            await connector.subscribe("barrier", lambda m: None)
            assert connector.stats.callback_errors == 2
    assert got == ["c/1", "c/2"]
    assert "boom" in caplog.text


def marker_topic(link: FakeLink) -> str:
    """The connection's marker topic (its filter under ``/_marker/``)."""
    return next(f for f in link.filters if "/_marker/" in f and not f.endswith("/+"))


def data_filters(filters: list[str]) -> list[str]:
    """The filters that are not the connector's own (its marker space: markers, the probe)."""
    return [f for f in filters if "/_marker/" not in f]


async def test_unsubscribe_at_broker_only_when_the_last_subscription_goes(
    broker: FakeBroker,
) -> None:
    """The filter stays subscribed at the broker while another subscription uses it."""
    async with MqttConnector("broker", link=broker) as connector:
        first = await connector.subscribe("c/#", lambda m: None)
        second = await connector.subscribe("c/#", lambda m: None)
        await first.unsubscribe()
        assert data_filters(broker.link.unsubscribed) == []
        await second.unsubscribe()
        await second.unsubscribe()
        assert data_filters(broker.link.unsubscribed) == ["c/#"]


async def test_subscriptions_are_remade_after_reconnect(broker: FakeBroker, until: Until) -> None:
    """A new connection subscribes every filter in use again, and delivery resumes."""
    got: list[str] = []
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    await connector.connect()
    await connector.subscribe("c/#", lambda m: got.append(m.topic))
    broker.link.lose()
    await connector.subscribe("d/#", lambda m: got.append(m.topic))  # its link is gone
    await until(lambda: len(broker.links) == 2, "a second connection")
    assert await connector.wait_connected(5)
    assert {"c/#", "d/#"} <= set(broker.link.filters)
    broker.link.deliver("c/1", b"{}")
    await connector.subscribe("barrier2", lambda m: None)
    assert got == ["c/1"]
    await connector.disconnect()


async def test_subscribe_before_connect_subscribes_on_connect(broker: FakeBroker) -> None:
    """A subscription made while disconnected is sent to the broker on connection."""
    connector = MqttConnector("broker", link=broker)
    await connector.subscribe("c/#", lambda m: None)
    await connector.connect()
    assert "c/#" in broker.link.filters
    await connector.disconnect()


async def test_the_connectors_own_filters_stay_subscribed_at_the_broker(
    broker: FakeBroker,
) -> None:
    """Unsubscribing from the connector's status or marker topic keeps them at the broker."""
    async with MqttConnector("broker", source_id="engine", link=broker) as connector:
        for own in (status_topic("engine"), marker_topic(broker.link)):
            handle = await connector.subscribe(own, lambda m: None)
            await handle.unsubscribe()
        assert data_filters(broker.link.unsubscribed) == []
        assert {status_topic("engine"), marker_topic(broker.link)} <= set(broker.link.filters)


async def test_mqtt5_copies_reach_only_the_subscriptions_they_are_for(broker: FakeBroker) -> None:
    """Under MQTT 5 the broker sends a copy per matching filter: each callback gets one."""
    got: dict[str, list[str]] = {"hash": [], "plus": []}
    connector = MqttConnector("broker", protocol="5", source_id="s", link=broker)
    await connector.subscribe("a/#", lambda m: got["hash"].append(m.topic))  # made on connect
    async with connector:
        await connector.subscribe("a/+", lambda m: got["plus"].append(m.topic))
        statuses = Inbox()
        await connector.subscribe("cascade/status/+", statuses)  # overlaps the connector's own
        stale = b'{"status": "offline", "source": "s", "session": 1}'
        broker.route("a/b", b"{}", 0, False)
        broker.route(status_topic("s"), stale, 1, True)
        await statuses.until(lambda m: m.payload["status"] == "offline")
        await statuses.until(lambda m: m.payload["status"] == "online")  # the re-announcement
        await connector.subscribe("barrier", lambda m: None)
        assert got == {"hash": ["a/b"], "plus": ["a/b"]}
        # the retained birth, the stale will, the re-announcement: each once
        assert [m.payload["status"] for m in statuses.all] == ["online", "offline", "online"]
        births = [m for m in broker.link.sent if m.topic == status_topic("s")]
        assert len(births) == 2  # the first, and one re-announcement


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_a_refused_subscription_is_reported(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """A SUBACK refusing a filter (0x80 or above) is logged: nothing will arrive on it."""
    broker.refuse = {"secret/#"}
    with caplog.at_level(logging.WARNING, logger="cascade.connectors.mqtt"):
        async with MqttConnector(
            "broker", protocol=protocol, link=broker, connect_timeout=0.1, backoff_max=0.1
        ) as connector:
            await connector.subscribe("secret/#", lambda m: None)
            await connector.subscribe("open/#", lambda m: None)
    refusals = [
        r.getMessage() for r in caplog.records if "refused the subscription" in r.getMessage()
    ]
    assert len(refusals) == 1
    assert "'secret/#'" in refusals[0]


async def test_mqtt5_a_filter_keeps_its_identifier_when_subscribed_again(
    broker: FakeBroker,
) -> None:
    """Unsubscribed and subscribed again, a filter has the same identifier: late copies still fit.

    The broker may still send copies with the old identifier, e.g. when the
    second subscribe happened while offline and was never sent on its own.
    """
    got: list[str] = []
    async with MqttConnector("broker", protocol="5", source_id="s", link=broker) as connector:
        handle = await connector.subscribe("ctl/#", lambda m: got.append("first"))
        number = broker.link.subscription_numbers["ctl/#"]
        assert number is not None
        await handle.unsubscribe()
        await connector.subscribe("ctl/#", lambda m: got.append("second"))
        assert broker.link.subscription_numbers["ctl/#"] == number
        broker.link.deliver("ctl/x", b"{}", subscription_ids=[number])
        await connector.subscribe("barrier", lambda m: None)
    assert got == ["second"]
