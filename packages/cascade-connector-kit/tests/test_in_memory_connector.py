"""The in-memory connector keeps the Connector contract with broker semantics."""

from __future__ import annotations

import logging

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector, InvalidTopicError, Message, decode_status


class Inbox:
    """Collects delivered messages."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


async def test_satisfies_protocol(broker: InMemoryBroker) -> None:
    """It is a Connector at run time too."""
    assert isinstance(InMemoryConnector(broker), Connector)


async def test_retained_delivered_to_late_subscriber_before_subscribe_returns(
    broker: InMemoryBroker,
) -> None:
    """A late subscriber gets the retained message, flagged, before subscribe returns."""
    async with InMemoryConnector(broker, presence=False) as pub:
        await pub.publish("cascade/constraints/global", {"id": "p"}, qos=1, retain=True)
        await pub.publish("cascade/constraints/other", {"id": "q"})  # not retained
    inbox = Inbox()
    async with InMemoryConnector(broker, presence=False) as sub:
        await sub.subscribe("cascade/constraints/#", inbox)
        assert [(m.topic, m.payload, m.retain) for m in inbox.messages] == [
            ("cascade/constraints/global", {"id": "p"}, True)
        ]


async def test_empty_retained_payload_clears(broker: InMemoryBroker) -> None:
    """An empty retained publish clears the topic, and live subscribers see it as ``{}``."""
    live = Inbox()
    async with InMemoryConnector(broker, presence=False) as conn:
        await conn.subscribe("t/#", live)
        await conn.publish("t/a", {"x": 1}, retain=True)
        await conn.publish("t/a", b"", retain=True)
        await broker.idle()
        assert broker.retained("t/a") is None
        assert [m.payload for m in live.messages] == [{"x": 1}, {}]
        late = Inbox()
        await conn.subscribe("t/#", late)
        assert late.messages == []


async def test_wildcard_routing(broker: InMemoryBroker) -> None:
    """Messages go to every subscription whose filter matches, and to no other."""
    plus, hash_, exact, none = Inbox(), Inbox(), Inbox(), Inbox()
    async with InMemoryConnector(broker, presence=False) as conn:
        await conn.subscribe("a/+/c", plus)
        await conn.subscribe("a/#", hash_)
        await conn.subscribe("a/b/c", exact)
        await conn.subscribe("#", none)  # '#' never matches $-topics
        for topic in ["a/b/c", "a/x/c", "a", "a/b/c/d", "$SYS/a"]:
            await conn.publish(topic, {"t": topic})
        await broker.idle()
    assert plus.topics == ["a/b/c", "a/x/c"]
    assert hash_.topics == ["a/b/c", "a/x/c", "a", "a/b/c/d"]
    assert exact.topics == ["a/b/c"]
    assert "$SYS/a" not in none.topics


async def test_unsubscribe_stops_delivery(broker: InMemoryBroker) -> None:
    """After unsubscribe the callback gets nothing; another one on the filter still does."""
    first, second = Inbox(), Inbox()
    async with InMemoryConnector(broker, presence=False) as conn:
        handle = await conn.subscribe("t", first)
        await conn.subscribe("t", second)
        await conn.publish("t", {"n": 1})
        await broker.idle()
        await handle.unsubscribe()
        await handle.unsubscribe()  # idempotent
        await conn.publish("t", {"n": 2})
        await broker.idle()
    assert [m.payload["n"] for m in first.messages] == [1]
    assert [m.payload["n"] for m in second.messages] == [1, 2]


async def test_presence_birth_graceful_offline_and_sessions(broker: InMemoryBroker) -> None:
    """Connect publishes a retained online with a rising session; disconnect a graceful offline."""
    conn = InMemoryConnector(broker, source_id="engine/1")
    topic = "cascade/status/engine%2F1"
    await conn.connect()
    await conn.connect()  # idempotent
    birth = decode_status(broker.retained(topic) or b"")
    assert (birth.status, birth.source, birth.session) == ("online", "engine/1", 1)
    await conn.disconnect()
    await conn.disconnect()  # idempotent
    offline = decode_status(broker.retained(topic) or b"")
    assert (offline.status, offline.session, offline.reason) == ("offline", 1, "shutdown")
    await conn.connect()
    assert decode_status(broker.retained(topic) or b"").session == 2
    await conn.disconnect()


async def test_will_published_on_crash(broker: InMemoryBroker) -> None:
    """A crashed connector's will (offline, same session, no reason) reaches other clients."""
    watcher_inbox = Inbox()
    async with InMemoryConnector(broker, source_id="watcher") as watcher:
        await watcher.subscribe("cascade/status/engine", watcher_inbox)
        engine = InMemoryConnector(broker, source_id="engine")
        await engine.connect()
        await engine.crash()
        await broker.idle()
        statuses = [decode_status(m.payload) for m in watcher_inbox.messages]
        assert [(s.status, s.session, s.reason) for s in statuses] == [
            ("online", 1, None),
            ("offline", 1, None),
        ]
        assert not engine.is_connected
        assert decode_status(broker.retained("cascade/status/engine") or b"").status == "offline"


async def test_callback_failure_is_isolated_and_counted(
    broker: InMemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback is logged and counted; other callbacks and later messages still arrive."""
    good = Inbox()

    async def bad(message: Message) -> None:
        raise RuntimeError("boom")

    async with InMemoryConnector(broker, presence=False) as conn:
        await conn.subscribe("t", bad)
        await conn.subscribe("t", good)
        with caplog.at_level(logging.ERROR):
            await conn.publish("t", {"n": 1})
            await conn.publish("t", {"n": 2})
            await broker.idle()
    assert [m.payload["n"] for m in good.messages] == [1, 2]
    assert conn.stats.callback_errors == 2
    assert "boom" in caplog.text


async def test_bad_payloads_rejected_and_counted(broker: InMemoryBroker) -> None:
    """Payloads that are not JSON objects are counted and not delivered; good ones still are."""
    inbox = Inbox()
    async with InMemoryConnector(broker, presence=False) as conn:
        await conn.subscribe("t", inbox)
        for raw in [b"nope", b"[1]", b'{"ok": true}', b"\xff"]:
            await conn.publish("t", raw)
        await broker.idle()
    assert [m.payload for m in inbox.messages] == [{"ok": True}]
    assert conn.stats.rejected == 3
    assert conn.stats.received == 1


async def test_publish_before_connect_is_a_counted_no_op(broker: InMemoryBroker) -> None:
    """Publishing while not connected drops the message and counts it; it does not raise."""
    conn = InMemoryConnector(broker, presence=False)
    await conn.publish("t", {"x": 1}, retain=True)
    assert conn.stats.dropped == 1
    assert broker.retained("t") is None


async def test_invalid_topics_raise(broker: InMemoryBroker) -> None:
    """A wildcard in a topic name, or a malformed filter, is a programming error and raises."""
    async with InMemoryConnector(broker, presence=False) as conn:
        with pytest.raises(InvalidTopicError):
            await conn.publish("a/+", {})
        with pytest.raises(InvalidTopicError):
            await conn.subscribe("a/#/b", Inbox())


async def test_subscriptions_survive_reconnect(broker: InMemoryBroker) -> None:
    """Subscriptions made before a disconnect are made again on the next connect."""
    inbox = Inbox()
    conn = InMemoryConnector(broker, presence=False)
    await conn.subscribe("t", inbox)  # before connect: recorded, returns at once
    async with conn:
        pass
    async with InMemoryConnector(broker, presence=False) as other:
        await other.publish("t", {"n": 1}, retain=True)
    async with conn:
        await broker.idle()
    assert [m.payload for m in inbox.messages] == [{"n": 1}]


async def test_a_shared_subscription_gives_each_message_to_one_member_in_turn(
    broker: InMemoryBroker,
) -> None:
    """As mosquitto does: each message on the topic reaches one client of the group (each in
    turn), a plain subscriber gets every one, and a shared filter brings no retained message."""
    first, second, plain = Inbox(), Inbox(), Inbox()
    async with (
        InMemoryConnector(broker, presence=False) as a,
        InMemoryConnector(broker, presence=False) as b,
        InMemoryConnector(broker, presence=False) as c,
    ):
        await a.publish("jobs/x", {"n": -1}, qos=1, retain=True)
        await a.subscribe("$share/g/jobs/+", first)
        await b.subscribe("$share/g/jobs/+", second)
        await c.subscribe("jobs/+", plain)
        for n in range(6):
            await c.publish("jobs/x", {"n": n}, qos=1)
        await broker.idle()
    assert [m.payload["n"] for m in first.messages] == [0, 2, 4]
    assert [m.payload["n"] for m in second.messages] == [1, 3, 5]
    assert [m.payload["n"] for m in plain.messages] == [-1, 0, 1, 2, 3, 4, 5]


async def test_a_broker_without_shared_subscriptions_delivers_nothing_to_one() -> None:
    """``shared_subscriptions=False`` (RabbitMQ 3.x): a ``$share/...`` filter gets nothing."""
    broker = InMemoryBroker(shared_subscriptions=False)
    inbox = Inbox()
    async with InMemoryConnector(broker, presence=False) as conn:
        await conn.publish("jobs/x", {"n": -1}, qos=1, retain=True)
        await conn.subscribe("$share/g/jobs/+", inbox)
        await conn.publish("jobs/x", {"n": 0}, qos=1)
        await broker.idle()
    assert inbox.messages == []
