"""QoS 0 at least once: confirmed by a later broker answer, resent after a lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink, Sent

Until = Callable[[Callable[[], object], str], Awaitable[None]]

CONFIRM_DELAY = 0.05  # the connector asks at most this long after a QoS 0 message was written


@pytest.fixture(params=[True, False], ids=["batches", "publish"])
def broker(request: pytest.FixtureRequest) -> FakeBroker:
    """The sender's batched writes (its fast path) and publish(): both behave alike."""
    return FakeBroker(batches=bool(request.param))


def handed_qos0(link: FakeLink) -> list[bytes]:
    """The payloads of the QoS 0 messages the connector handed to this link, in order."""
    return [m.payload for m in link.sent if m.qos == 0 and m.topic.startswith("t/")]


def requests(link: FakeLink) -> list[Sent]:
    """The confirmation requests handed to this link."""
    return [m for m in link.sent if m.topic.endswith("/confirm")]


def marker_topic(link: FakeLink) -> str:
    """The connection's marker topic (its filter under ``/_marker/``)."""
    return next(f for f in link.filters if "/_marker/" in f and not f.endswith("/+"))


def _hold_answers(link: FakeLink) -> FakeLink:
    link.auto_settle = False
    return link


async def test_qos0_is_published_once_a_later_answer_confirms_it(
    broker: FakeBroker, until: Until
) -> None:
    """Written is not enough: the PUBACK of the confirmation request settles the QoS 0 messages."""
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        link = _hold_answers(broker.link)
        for n in range(3):
            await connector.publish("t/x", b"%d" % n)
        flushing = asyncio.create_task(connector.flush(5))
        await until(lambda: requests(link), "a confirmation request")
        (request,) = requests(link)
        for mid in [m for m in link.pending if m != request.mid]:  # only the request unanswered
            link.settle(mid)
        assert connector.stats.published == 0
        assert not flushing.done()
        assert request.topic == f"{marker_topic(link)}/confirm"
        assert (request.payload, request.qos, request.retain) == (b"", 1, False)
        link.settle(request.mid)  # the request's PUBACK
        await flushing
        assert connector.stats.published == 3
        assert handed_qos0(link) == [b"0", b"1", b"2"]


async def test_a_trickle_is_confirmed_within_the_delay(broker: FakeBroker, until: Until) -> None:
    """Without flush, a few messages still get their request, CONFIRM_DELAY after they were sent."""
    async with MqttConnector("broker", link=broker) as connector:
        link = broker.link
        await connector.publish("t/x", b"1")
        await until(lambda: handed_qos0(link), "the message handed over")
        assert not requests(link)
        loop = asyncio.get_running_loop()
        asked: asyncio.Future[float] = loop.create_future()
        publish = link.publish

        def spy(topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
            if topic.endswith("/confirm") and not asked.done():
                asked.set_result(loop.time())
            return publish(topic, payload, qos, retain)

        link.publish = spy  # type: ignore[method-assign]
        sent = loop.time()
        await asyncio.wait_for(asked, 5 * CONFIRM_DELAY + 1)
        assert asked.result() - sent <= CONFIRM_DELAY + 0.5
        await until(lambda: connector.stats.published == 1, "the message confirmed")


async def test_a_request_goes_every_quarter_window(broker: FakeBroker) -> None:
    """A burst is confirmed as it goes: at least one request per max_in_flight / 4 messages."""
    async with MqttConnector("broker", max_in_flight=40, link=broker) as connector:
        for n in range(200):
            await connector.publish("t/x", b"%d" % n)
        await connector.flush(5)
        assert len(requests(broker.link)) >= 200 // 40
        assert connector.stats.published == 200


async def test_a_flush_longer_than_the_window_asks_for_its_last_messages_at_once(
    broker: FakeBroker, until: Until
) -> None:
    """The last messages a flush waits for, fewer than a quarter window, handed after earlier
    requests went: asked for as they are handed, not CONFIRM_DELAY later (an engine's
    telemetry paused 50 ms at the end of every burst it let the connector catch up on)."""
    async with MqttConnector("broker", source_id="s", max_in_flight=40, link=broker) as connector:
        link = _hold_answers(broker.link)
        for n in range(85):  # two full windows, and 5 more
            await connector.publish("t/x", b"%d" % n)
        flushing = asyncio.create_task(connector.flush(5))
        for handed in (40, 80):
            await until(lambda: len(handed_qos0(link)) == handed, "a full window")  # noqa: B023
            await until(lambda: link.sent[-1].topic.endswith("/confirm"), "its request")
            link.settle_all()
        await until(lambda: len(handed_qos0(link)) == 85, "the last 5 handed over")
        last = max(i for i, m in enumerate(link.sent) if m.topic == "t/x")
        assert [m for m in link.sent[last:] if m.topic.endswith("/confirm")], "not asked at once"
        link.settle_all()
        await flushing
        assert connector.stats.published == 85


async def test_the_answer_to_a_request_sends_more_at_once(broker: FakeBroker, until: Until) -> None:
    """A full window refills as soon as a request's answer settles a run, not at half window.

    What is sent then carries the ACK of that answer: waiting for half the window
    left the broker's next answer to TCP's delayed ACK (a 40 ms stall per window).
    """
    async with MqttConnector(
        "broker", source_id="s", max_in_flight=40, flush_timeout=0.01, link=broker
    ) as connector:
        link = _hold_answers(broker.link)
        for n in range(10):  # a quarter window: handed over, then a request for them
            await connector.publish("t/x", b"%d" % n)
        await until(lambda: requests(link), "the first request")
        for n in range(10, 60):
            await connector.publish("t/x", b"%d" % n)
        await until(lambda: len(handed_qos0(link)) == 40, "a full window")
        first_request = requests(link)[0]
        before = link.sent[: link.sent.index(first_request) + 1]
        for mid in dict.fromkeys(m.mid for m in before):  # the request, and what came before it
            link.settle(mid)
        assert connector.stats.published == 10  # 30 in flight: more than half the window
        await until(lambda: len(handed_qos0(link)) > 40, "more sent at once")


async def test_a_qos1_puback_confirms_the_qos0_messages_before_it(until: Until) -> None:
    """Mixed traffic needs no request of its own: a QoS 1 message's PUBACK answers for the rest."""
    broker = FakeBroker(batches=True)
    async with MqttConnector("broker", link=broker) as connector:
        link = _hold_answers(broker.link)
        await connector.publish("t/x", b"a")
        await connector.publish("t/x", b"b")
        await connector.publish("t/x", b"c", qos=1)
        await until(lambda: [m for m in link.sent if m.payload == b"c"], "all handed over")
        qos0, qos1 = [w for w in link.writes if w[0].topic == "t/x"]
        link.settle(qos0[0].mid)  # the QoS 0 run written
        assert connector.stats.published == 0
        link.settle(qos1[0].mid)  # the PUBACK
        assert connector.stats.published == 3
        assert not requests(link)


async def test_an_answer_confirms_what_earlier_requests_asked_for(
    broker: FakeBroker, until: Until
) -> None:
    """Answers out of order: a request's answer also settles the QoS 0 messages an earlier,
    unanswered request (here a QoS 1 message) asked for; that one waits for its own PUBACK."""
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        link = _hold_answers(broker.link)
        await connector.publish("t/x", b"a")
        await connector.publish("t/x", b"b")
        await connector.publish("t/x", b"q", qos=1)  # asks for a and b
        await connector.publish("t/x", b"c")
        flushing = asyncio.create_task(connector.flush(5))
        await until(lambda: requests(link), "a confirmation request, for c")
        (request,) = requests(link)
        (q,) = (m for m in link.sent if m.payload == b"q")
        for mid in [m for m in link.pending if m not in (request.mid, q.mid)]:
            link.settle(mid)  # written (and the birth and markers)
        assert connector.stats.published == 0
        link.settle(request.mid)  # before q's PUBACK
        assert connector.stats.published == 3
        assert not flushing.done()
        link.settle(q.mid)
        await flushing
        assert connector.stats.published == 4
        assert handed_qos0(link) == [b"a", b"b", b"c"]


async def test_unconfirmed_qos0_messages_are_resent_and_counted(
    broker: FakeBroker, until: Until
) -> None:
    """Written but unconfirmed when the connection drops: sent again first, counted in resent."""
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    await connector.connect()
    first = _hold_answers(broker.link)
    await connector.publish("t/x", b"confirmed")
    await until(lambda: handed_qos0(first), "the first message handed over")
    flushing = asyncio.create_task(connector.flush(5))
    await until(lambda: requests(first), "a confirmation request")
    first.settle_all()
    await flushing
    for payload in (b"a", b"b"):
        await connector.publish("t/x", payload)
    await until(lambda: len(handed_qos0(first)) == 3, "a and b handed over")
    first.settle_all()  # written: the broker may or may not have them
    assert connector.stats.published == 1
    first.lose()
    await connector.publish("t/x", b"c")
    await connector.flush(5)
    await connector.disconnect()
    assert handed_qos0(first) == [b"confirmed", b"a", b"b"]
    assert [p for link in broker.links[1:] for p in handed_qos0(link)] == [b"a", b"b", b"c"]
    stats = connector.stats
    assert (stats.published, stats.resent, stats.dropped) == (4, 2, 0)


async def test_unconfirmed_messages_the_buffer_cannot_take_are_dropped_and_counted(
    broker: FakeBroker, until: Until
) -> None:
    """Put back into a full buffer, the oldest unconfirmed messages go: counted, never silent."""
    connector = MqttConnector(
        "broker", buffer_size=2, backoff_initial=0.001, backoff_max=0.001, link=broker
    )
    await connector.connect()
    first = _hold_answers(broker.link)
    for payload in (b"a", b"b", b"c"):  # one at a time: the queue holds two
        await connector.publish("t/x", payload)
        await until(lambda: payload in handed_qos0(first), "handed over")  # noqa: B023
    first.settle_all()
    first.lose()
    await connector.flush(5)
    await connector.disconnect()
    assert [p for link in broker.links[1:] for p in handed_qos0(link)] == [b"b", b"c"]
    stats = connector.stats
    assert (stats.published, stats.resent, stats.dropped) == (2, 2, 1)


async def test_a_refused_request_still_confirms(broker: FakeBroker, until: Until) -> None:
    """An MQTT 5 PUBACK refusing the request (an ACL) answers all the same; nothing is refused."""
    async with MqttConnector("broker", protocol="5", link=broker) as connector:
        link = _hold_answers(broker.link)
        await connector.publish("t/x", b"a")
        flushing = asyncio.create_task(connector.flush(5))
        await until(lambda: requests(link), "a confirmation request")
        (request,) = requests(link)
        for mid in [m for m in link.pending if m != request.mid]:
            link.settle(mid)
        link.settle(request.mid, refusal="Not authorized")
        await flushing
        assert (connector.stats.published, connector.stats.refused) == (1, 0)


async def test_a_wide_subscription_never_sees_our_own_confirmation_requests(
    broker: FakeBroker, until: Until
) -> None:
    """A '#' subscriber gets what was published, not the connector's internal requests."""
    received: list[str] = []
    async with MqttConnector("broker", presence=False, link=broker) as connector:
        await connector.subscribe("#", lambda m: received.append(m.topic))
        for n in range(3):
            await connector.publish("t/x", {"n": n})
        await connector.flush(5)
        assert requests(broker.link)  # the broker was asked, and echoed it back
        await connector.publish("t/end", {}, qos=1)
        await connector.flush(5)
        await until(lambda: "t/end" in received, "t/end received")
    assert "t/x" in received
    assert not [t for t in received if t.endswith("/confirm")]
