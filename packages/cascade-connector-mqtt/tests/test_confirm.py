"""QoS 0 at least once: confirmed by a later broker answer, resent after a lost connection."""

from __future__ import annotations

import asyncio

import pytest
from pytest_mock import MockerFixture

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt._confirm import CONFIRM_DELAY
from cascade.connectors.mqtt.testing._fake_client import (
    FakeClient,
    FakeMqtt,
    FakePaho,
    Info,
    fast_path_only,
    packet_ids,
    parse_publishes,
)


@pytest.fixture(params=["fast", "slow"])
def path(request: pytest.FixtureRequest, mocker: MockerFixture) -> str:
    """The sender's fast path (own PUBLISH packets) and paho's publish(): both behave alike."""
    if request.param == "slow":
        mocker.patch("cascade.connectors.mqtt._paho._link.fast_wire_supported", return_value=False)
    return str(request.param)


def handed_qos0(client: FakeClient) -> list[bytes]:
    """The payloads of the QoS 0 messages the connector handed to this client, in order."""
    batched = [p for _, blob in client.paho.packets for _, p, _ in parse_publishes(blob)]
    direct = [p for t, p, q, _ in client.paho.published if q == 0 and t.startswith("t/")]
    return batched + direct


def requests(client: FakeClient) -> list[tuple[str, bytes, int, bool]]:
    """The confirmation requests handed to this client."""
    return [m for m in client.paho.published if m[0].endswith("/confirm")]


async def _until(condition: object, what: str) -> None:
    """Yield to the event loop until ``condition()`` holds (no timers: the fake answers at once)."""
    assert callable(condition)
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def _hold_answers(client: FakeClient) -> FakePaho:
    paho = client.paho
    paho.auto_ack = False
    return paho


async def test_qos0_is_published_once_a_later_answer_confirms_it(
    fake_mqtt: FakeMqtt, path: str
) -> None:
    """Written is not enough: the PUBACK of the confirmation request settles the QoS 0 messages."""
    async with MqttConnector("broker", source_id="s", link=fake_mqtt.link) as connector:
        paho = _hold_answers(fake_mqtt.client)
        for n in range(3):
            await connector.publish("t/x", b"%d" % n)
        flushing = asyncio.create_task(connector.flush(5))
        await _until(lambda: requests(fake_mqtt.client), "a confirmation request")
        for mid in range(1, paho.last_mid):  # every write reported, only the request unanswered
            paho.ack(mid)
        assert connector.stats.published == 0
        assert not flushing.done()
        ((topic, payload, qos, retain),) = requests(fake_mqtt.client)
        assert topic == f"{fake_mqtt.marker_topic}/confirm"
        assert (payload, qos, retain) == (b"", 1, False)
        paho.ack(paho.last_mid)  # the request's PUBACK
        await flushing
        assert connector.stats.published == 3
        assert handed_qos0(fake_mqtt.client) == [b"0", b"1", b"2"]


async def test_a_trickle_is_confirmed_within_the_delay(fake_mqtt: FakeMqtt) -> None:
    """Without flush, a few messages still get their request, CONFIRM_DELAY after they were sent."""
    async with MqttConnector("broker", link=fake_mqtt.link) as connector:
        await connector.publish("t/x", b"1")
        await _until(lambda: handed_qos0(fake_mqtt.client), "the message handed over")
        assert not requests(fake_mqtt.client)
        loop = asyncio.get_running_loop()
        asked = loop.create_future()
        publish = fake_mqtt.paho.publish

        def spy(topic: str, payload: bytes, qos: int, retain: bool) -> Info:
            if topic.endswith("/confirm") and not asked.done():
                asked.set_result(loop.time())
            return publish(topic, payload, qos, retain)

        fake_mqtt.paho.publish = spy  # type: ignore[method-assign]
        sent = loop.time()
        await asyncio.wait_for(asked, 5 * CONFIRM_DELAY + 1)
        assert asked.result() - sent <= CONFIRM_DELAY + 0.5
        await _until(lambda: connector.stats.published == 1, "the message confirmed")


async def test_a_request_goes_every_quarter_window(fake_mqtt: FakeMqtt) -> None:
    """A burst is confirmed as it goes: at least one request per max_in_flight / 4 messages."""
    async with MqttConnector("broker", max_in_flight=40, link=fake_mqtt.link) as connector:
        for n in range(200):
            await connector.publish("t/x", b"%d" % n)
        await connector.flush(5)
        assert len(requests(fake_mqtt.client)) >= 200 // 40
        assert connector.stats.published == 200


async def test_the_answer_to_a_request_sends_more_at_once(fake_mqtt: FakeMqtt, path: str) -> None:
    """A full window refills as soon as a request's answer settles a run, not at half window.

    What is sent then carries the ACK of that answer: waiting for half the window
    left the broker's next answer to TCP's delayed ACK (a 40 ms stall per window).
    """
    async with MqttConnector(
        "broker", source_id="s", max_in_flight=40, flush_timeout=0.01, link=fake_mqtt.link
    ) as connector:
        paho = _hold_answers(fake_mqtt.client)
        for n in range(10):  # a quarter window: handed over, then a request for them
            await connector.publish("t/x", b"%d" % n)
        await _until(lambda: paho.requested, "the first request")
        for n in range(10, 60):
            await connector.publish("t/x", b"%d" % n)
        await _until(lambda: len(handed_qos0(fake_mqtt.client)) == 40, "a full window")
        asked = [mid for mid in range(1, paho.last_mid + 1) if mid in paho.requested]
        for mid in range(1, asked[0] + 1):  # the first request, and what was written before it
            paho.ack(mid)
        assert connector.stats.published == 10  # 30 in flight: more than half the window
        await _until(lambda: len(handed_qos0(fake_mqtt.client)) > 40, "more sent at once")


@fast_path_only
async def test_a_qos1_puback_confirms_the_qos0_messages_before_it(fake_mqtt: FakeMqtt) -> None:
    """Mixed traffic needs no request of its own: a QoS 1 message's PUBACK answers for the rest."""
    async with MqttConnector("broker", link=fake_mqtt.link) as connector:
        paho = _hold_answers(fake_mqtt.client)
        await connector.publish("t/x", b"a")
        await connector.publish("t/x", b"b")
        await connector.publish("t/x", b"c", qos=1)
        await _until(lambda: len(paho.packets) == 2, "both packets handed over")
        paho.ack(paho.packets[0][0])  # the QoS 0 run written
        assert connector.stats.published == 0
        (packet_id,) = packet_ids(paho.packets[1][1])
        paho.puback(packet_id)
        assert connector.stats.published == 3
        assert not requests(fake_mqtt.client)


async def test_unconfirmed_qos0_messages_are_resent_and_counted(
    fake_mqtt: FakeMqtt, path: str
) -> None:
    """Written but unconfirmed when the connection drops: sent again first, counted in resent."""
    connector = MqttConnector(
        "broker", backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    await connector.connect()
    first = fake_mqtt.client
    paho = _hold_answers(first)
    await connector.publish("t/x", b"confirmed")
    await _until(lambda: handed_qos0(first), "the first message handed over")
    flushing = asyncio.create_task(connector.flush(5))
    await _until(lambda: requests(first), "a confirmation request")
    paho.ack_all()
    await flushing
    for payload in (b"a", b"b"):
        await connector.publish("t/x", payload)
    await _until(lambda: len(handed_qos0(first)) == 3, "a and b handed over")
    paho.ack_all()  # written: the broker may or may not have them
    assert connector.stats.published == 1
    first.lose(None)
    await connector.publish("t/x", b"c")
    await connector.flush(5)
    await connector.disconnect()
    assert handed_qos0(first) == [b"confirmed", b"a", b"b"]
    assert [p for client in fake_mqtt.clients[1:] for p in handed_qos0(client)] == [
        b"a",
        b"b",
        b"c",
    ]
    stats = connector.stats
    assert (stats.published, stats.resent, stats.dropped) == (4, 2, 0)


async def test_unconfirmed_messages_the_buffer_cannot_take_are_dropped_and_counted(
    fake_mqtt: FakeMqtt,
) -> None:
    """Put back into a full buffer, the oldest unconfirmed messages go: counted, never silent."""
    connector = MqttConnector(
        "broker", buffer_size=2, backoff_initial=0.001, backoff_max=0.001, link=fake_mqtt.link
    )
    await connector.connect()
    first = fake_mqtt.client
    paho = _hold_answers(first)
    for payload in (b"a", b"b", b"c"):  # one at a time: the queue holds two
        await connector.publish("t/x", payload)
        await _until(lambda: payload in handed_qos0(first), "handed over")  # noqa: B023
    paho.ack_all()
    first.lose(None)
    await connector.flush(5)
    await connector.disconnect()
    assert [p for client in fake_mqtt.clients[1:] for p in handed_qos0(client)] == [b"b", b"c"]
    stats = connector.stats
    assert (stats.published, stats.resent, stats.dropped) == (2, 2, 1)


async def test_a_refused_request_still_confirms(fake_mqtt: FakeMqtt) -> None:
    """An MQTT 5 PUBACK refusing the request (an ACL) answers all the same; nothing is refused."""

    class Refusal:
        is_failure = True

        def __str__(self) -> str:
            return "Not authorized"

    async with MqttConnector("broker", protocol="5", link=fake_mqtt.link) as connector:
        paho = _hold_answers(fake_mqtt.client)
        await connector.publish("t/x", b"a")
        flushing = asyncio.create_task(connector.flush(5))
        await _until(lambda: requests(fake_mqtt.client), "a confirmation request")
        for mid in range(1, paho.last_mid):
            paho.ack(mid)
        paho.on_publish(paho, None, paho.last_mid, Refusal(), None)
        await flushing
        assert (connector.stats.published, connector.stats.refused) == (1, 0)


async def test_a_wide_subscription_never_sees_our_own_confirmation_requests(
    fake_mqtt: FakeMqtt, mocker: MockerFixture
) -> None:
    """A '#' subscriber gets what was published, not the connector's internal requests."""
    # paho's publish() path, where the fake broker echoes every message to matching filters
    mocker.patch("cascade.connectors.mqtt._paho._link.fast_wire_supported", return_value=False)
    received: list[str] = []
    async with MqttConnector("broker", presence=False, link=fake_mqtt.link) as connector:
        await connector.subscribe("#", lambda m: received.append(m.topic))
        for n in range(3):
            await connector.publish("t/x", {"n": n})
        await connector.flush(5)
        assert requests(fake_mqtt.client)  # the broker was asked, and echoed it back
        await connector.publish("t/end", {}, qos=1)
        await connector.flush(5)
        await _until(lambda: "t/end" in received, "t/end received")
    assert not [t for t in received if t.endswith("/confirm")]
