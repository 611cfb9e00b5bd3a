"""Fire-and-forget publishing: encoding, buffering, overflow, ordering, flush."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import FakeBroker, FakeLink
from cascade.interfaces import ConnectError, FlushTimeoutError, StatusMessage

Until = Callable[[Callable[[], object], str], Awaitable[None]]


def sent_qos0(broker: FakeBroker) -> list[tuple[str, bytes, bool]]:
    """Every QoS 0 message published through the connector, across all its links, in order."""
    return [
        (m.topic, m.payload, m.retain)
        for link in broker.links
        for m in link.sent
        if m.qos == 0 and m.topic.startswith("t/")
    ]


def data_writes(link: FakeLink) -> list[list[tuple[str, bytes]]]:
    """The writes of messages to ``t/...`` topics handed to ``link``, each as (topic, payload)."""
    return [
        [(m.topic, m.payload) for m in write]
        for write in link.writes
        if write[0].topic.startswith("t/")
    ]


async def test_payloads_are_encoded_as_json_or_sent_as_is(broker: FakeBroker) -> None:
    """Dicts and schema objects become JSON; str and bytes go unchanged."""
    async with MqttConnector("broker", link=broker) as connector:
        await connector.publish("t/dict", {"a": 1, "b": [True, None]})
        await connector.publish("t/schema", StatusMessage(status="online"))
        await connector.publish("t/str", "héllo")
        await connector.publish("t/bytes", b"\x00\x01", retain=True)
        await connector.flush(5)
    assert sent_qos0(broker) == [
        ("t/dict", b'{"a":1,"b":[true,null]}', False),
        ("t/schema", b'{"status":"online"}', False),
        ("t/str", "héllo".encode(), False),
        ("t/bytes", b"\x00\x01", True),
    ]


async def test_qos1_is_settled_by_its_puback(broker: FakeBroker, until: Until) -> None:
    """MQTT 3.1.1 QoS 1 messages go in one batched write, each with its own packet id."""
    broker.auto_settle = False
    async with MqttConnector("broker", source_id="s", link=broker) as connector:
        broker.link.settle_all()  # the birth and the markers
        await connector.publish("t/q1", {"x": 1}, qos=1, retain=True)
        await connector.publish("t/q1", {"x": 2}, qos=1)
        await until(lambda: data_writes(broker.link), "the messages handed over")
        (write,) = (w for w in broker.link.writes if w[0].topic == "t/q1")
        assert [(m.payload, m.qos, m.retain, m.batched) for m in write] == [
            (b'{"x":1}', 1, True, True),
            (b'{"x":2}', 1, False, True),
        ]
        first, second = (m.mid for m in write)
        assert first != second
        broker.link.settle(first)
        assert connector.stats.published == 1
        assert connector.stats.buffered == 1
        broker.link.settle(second)
        await connector.flush(1)
        assert connector.stats.published == 2


async def test_qos1_over_mqtt5_goes_through_publish(broker: FakeBroker) -> None:
    """With MQTT 5, QoS 1 goes through the link's publish() (its PUBACKs carry reason codes)."""
    async with MqttConnector("broker", protocol="5", link=broker) as connector:
        await connector.publish("t/q1", {"x": 1}, qos=1, retain=True)
        await connector.flush(5)
        (sent,) = (m for m in broker.link.sent if m.topic == "t/q1")
        assert (sent.payload, sent.qos, sent.retain, sent.batched) == (b'{"x":1}', 1, True, False)
        assert connector.stats.published == 1


async def test_empty_retained_payload_is_sent_empty(broker: FakeBroker) -> None:
    """An empty retained payload (which clears the topic) is not turned into JSON."""
    async with MqttConnector("broker", link=broker) as connector:
        await connector.publish("t/clear", b"", retain=True)
        await connector.flush(5)
    assert sent_qos0(broker) == [("t/clear", b"", True)]


async def test_publish_before_connect_is_a_counted_no_op(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing before connect() drops the message, counts it and logs, without raising."""
    connector = MqttConnector("broker", link=broker)
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        await connector.publish("t/x", {"a": 1})
    assert connector.stats.dropped == 1
    assert "not connected" in caplog.text
    assert broker.links == []


async def test_invalid_topic_and_qos_are_caller_errors(broker: FakeBroker) -> None:
    """Wildcards in a topic and an unknown QoS are programming errors, raised at once."""
    async with MqttConnector("broker", link=broker) as connector:
        with pytest.raises(ValueError, match="qos"):
            await connector.publish("t/x", {}, qos=3)
        with pytest.raises(ValueError, match="wildcard"):
            await connector.publish("t/+", {})


async def test_full_buffer_drops_the_oldest_and_warns_once(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """While the connection is away, a full buffer keeps the newest messages, counting drops."""
    connector = MqttConnector(
        "broker", buffer_size=3, backoff_initial=60, backoff_max=60, link=broker
    )
    broker.fail_next(*[ConnectError("broker", 1883, "unreachable")] * 2)
    await connector.connect()
    assert not connector.is_connected
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        for n in range(10):
            await connector.publish("t/n", {"n": n})
    assert connector.stats.dropped == 7
    assert connector.stats.buffered == 3
    assert caplog.text.count("buffer full") == 1
    await connector.disconnect()
    assert connector.stats.dropped == 10  # what was still buffered is discarded and counted


async def test_unconfirmed_messages_are_resent_in_order_after_reconnect(
    broker: FakeBroker, until: Until
) -> None:
    """Messages handed over but not confirmed when the connection drops are sent again first:
    one alone (a probe) until the broker confirms it, then the rest at once."""
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    await connector.connect()
    first = broker.link
    first.auto_settle = False
    for n in range(3):
        await connector.publish("t/n", {"n": n})
    await until(lambda: data_writes(first), "the messages handed over")
    first.lose()
    for n in range(3, 5):
        await connector.publish("t/n", {"n": n})
    await connector.flush(5)
    resent = [m.payload for link in broker.links[1:] for m in link.sent if m.topic == "t/n"]
    assert resent == [b'{"n":%d}' % n for n in range(5)]
    probe, rest = data_writes(broker.links[1])
    assert probe == [("t/n", b'{"n":0}')]
    assert rest == [("t/n", b'{"n":%d}' % n) for n in range(1, 5)]
    assert connector.stats.reconnects == 1
    await connector.disconnect()


async def test_a_message_that_breaks_every_connection_is_given_up(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that drops the connection on one message: only that one is lost, and counted."""
    broker.poison = {b"poison"}
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    await connector.connect()
    for payload in ("before", "poison", "after"):
        await connector.publish("t/x", payload)
    await connector.flush(5)
    await connector.disconnect()
    delivered = [payload for _, payload, _ in sent_qos0(broker)]  # in writes not broken
    assert list(dict.fromkeys(delivered)) == [b"before", b"after"]  # copies may be resent
    assert connector.stats.dropped == 1
    assert connector.stats.reconnects <= 5
    assert "gave up a message to 't/x'" in caplog.text


async def test_flush_times_out_when_nothing_is_confirmed(broker: FakeBroker) -> None:
    """flush() raises FlushTimeoutError when the broker never confirms."""
    async with MqttConnector("broker", flush_timeout=0.05, link=broker) as connector:
        broker.link.auto_settle = False
        await connector.publish("t/x", {"a": 1}, qos=1)
        with pytest.raises(FlushTimeoutError):
            await connector.flush(0.05)
        broker.link.settle_all()
        await connector.flush(1)
        assert connector.stats.buffered == 0


async def test_without_batches_every_message_goes_through_publish() -> None:
    """A link without batched writes gets every message through publish(), in order."""
    broker = FakeBroker(batches=False)
    async with MqttConnector("broker", presence=False, link=broker) as connector:
        for n in range(5):
            await connector.publish("t/slow", {"n": n}, qos=n % 2)
        await connector.flush(5)
        sent = [m for m in broker.link.sent if m.topic == "t/slow"]
        assert not [m for m in broker.link.sent if m.batched]
        assert [(m.payload, m.qos) for m in sent] == [(b'{"n":%d}' % n, n % 2) for n in range(5)]
        assert connector.stats.published >= 5


async def test_a_bound_publisher_publishes_as_publish_does(broker: FakeBroker) -> None:
    """publisher(topic): its topic and QoS checked once; each call queues bytes in order with
    what publish() queues; before connect and after disconnect it drops and counts."""
    connector = MqttConnector("broker", link=broker)
    send = connector.publisher("t/bound")
    send(b"early")  # not connected yet
    assert connector.stats.dropped == 1
    async with connector:
        send(b"1")
        await connector.publish("t/bound", b"2")
        send(b"3")
        await connector.flush(5)
    send(b"late")
    assert connector.stats.dropped == 2
    assert sent_qos0(broker) == [("t/bound", p, False) for p in (b"1", b"2", b"3")]
    assert connector.stats.published >= 3


@pytest.mark.parametrize(
    ("topic", "qos", "says"),
    [("t/+", 0, "wildcards"), ("", 0, "empty"), ("t/x", 3, "qos must be 0, 1 or 2")],
)
def test_a_bound_publisher_checks_its_topic_and_qos_at_once(
    topic: str, qos: int, says: str
) -> None:
    """A wildcard, an empty topic or a QoS that MQTT has not: ValueError when it is made."""
    with pytest.raises(ValueError, match=says):
        MqttConnector("broker", link=FakeBroker()).publisher(topic, qos)


async def test_a_batch_publisher_publishes_as_publish_does(broker: FakeBroker) -> None:
    """batch_publisher(topic): a batch queues its payloads in order, in line with what publish()
    queues; before connect and after disconnect the whole batch is dropped and counted."""
    connector = MqttConnector("broker", link=broker)
    send_many = connector.batch_publisher("t/batch")
    send_many([b"early", b"early too"])  # not connected yet
    assert connector.stats.dropped == 2
    async with connector:
        send_many([b"1", b"2"])
        await connector.publish("t/batch", b"3")
        send_many([])
        send_many([b"4"])
        await connector.flush(5)
    send_many([b"late"])
    assert connector.stats.dropped == 3
    assert sent_qos0(broker) == [("t/batch", p, False) for p in (b"1", b"2", b"3", b"4")]
    assert connector.stats.published >= 4


async def test_a_batch_into_a_full_buffer_drops_the_oldest_and_counts_them(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch larger than the room left keeps the newest messages, each drop counted."""
    connector = MqttConnector(
        "broker", buffer_size=3, backoff_initial=60, backoff_max=60, link=broker
    )
    broker.fail_next(*[ConnectError("broker", 1883, "unreachable")] * 2)
    await connector.connect()
    send_many = connector.batch_publisher("t/n")
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        send_many([b"0", b"1"])
        send_many([b"%d" % n for n in range(2, 10)])
    assert connector.stats.dropped == 7
    assert connector.stats.buffered == 3
    assert caplog.text.count("buffer full") == 1
    await connector.disconnect()
    assert connector.stats.dropped == 10


async def test_a_full_buffer_keeps_the_newest_messages_of_its_batches_in_order(
    broker: FakeBroker,
) -> None:
    """Batches and lone messages overflowing the buffer while the connection is away: the
    newest ``buffer_size`` of them are sent, in order, once it is back (a batch cut in two
    keeps its newest part)."""
    connector = MqttConnector(
        "broker", buffer_size=7, backoff_initial=0.05, backoff_max=0.05, link=broker
    )
    broker.fail_next(ConnectError("broker", 1883, "unreachable"))
    await connector.connect()
    assert not connector.is_connected
    send_many = connector.batch_publisher("t/n")
    send_many([b"0", b"1", b"2"])
    await connector.publish("t/n", b"3")
    send_many([b"4", b"5", b"6", b"7"])
    send_many([b"8", b"9"])  # 10 published: 0, 1 and 2 dropped
    assert (connector.stats.dropped, connector.stats.buffered) == (3, 7)
    await connector.flush(5)
    assert [payload for _, payload, _ in sent_qos0(broker)] == [b"%d" % n for n in range(3, 10)]
    await connector.disconnect()


async def test_a_lost_batch_is_resent_in_order_after_reconnect(
    broker: FakeBroker, until: Until
) -> None:
    """A batch handed over but not confirmed when the connection drops is sent again first:
    its first message alone (a probe) until the broker confirms it, then the rest with what
    came after."""
    connector = MqttConnector("broker", backoff_initial=0.001, backoff_max=0.001, link=broker)
    await connector.connect()
    first = broker.link
    first.auto_settle = False
    send_many = connector.batch_publisher("t/n")
    send_many([b"%d" % n for n in range(4)])
    await until(lambda: data_writes(first), "the batch handed over")
    first.lose()
    send_many([b"4", b"5"])
    await connector.flush(5)
    resent = [m.payload for link in broker.links[1:] for m in link.sent if m.topic == "t/n"]
    assert resent == [b"%d" % n for n in range(6)]
    probe, rest = data_writes(broker.links[1])
    assert probe == [("t/n", b"0")]
    assert rest == [("t/n", b"%d" % n) for n in range(1, 6)]
    assert connector.stats.resent == 4
    await connector.disconnect()


@pytest.mark.parametrize(
    ("topic", "qos", "says"),
    [("t/+", 0, "wildcards"), ("", 0, "empty"), ("t/x", 3, "qos must be 0, 1 or 2")],
)
def test_a_batch_publisher_checks_its_topic_and_qos_at_once(
    topic: str, qos: int, says: str
) -> None:
    """A wildcard, an empty topic or a QoS that MQTT has not: ValueError when it is made."""
    with pytest.raises(ValueError, match=says):
        MqttConnector("broker", link=FakeBroker()).batch_publisher(topic, qos)


_MESSAGE = st.tuples(
    st.sampled_from(["t/a", "t/b", "t/é"]),
    st.one_of(st.binary(max_size=300), st.integers(16_000, 70_000).map(lambda n: b"x" * n)),
    st.sampled_from([0, 0, 0, 1]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(_MESSAGE, min_size=1, max_size=40), protocol=st.sampled_from(["3.1.1", "5"])
)
def test_runs_of_every_mix_arrive_whole_in_order(
    messages: list[tuple[str, bytes, int, bool]], protocol: str
) -> None:
    """Whatever the mix of topics, sizes, QoS and retain, the broker gets each message as it was
    published, in order; a batched write carries about 64 KB at most, unless one alone is
    larger."""

    async def scenario() -> FakeBroker:
        broker = FakeBroker()
        async with MqttConnector("broker", protocol=protocol, link=broker) as connector:
            for topic, raw, qos, retain in messages:
                await connector.publish(topic, raw, qos, retain)
            await connector.flush(5)
        return broker

    broker = asyncio.run(scenario())
    got = [
        (m.topic, m.payload, m.qos, m.retain) for m in broker.link.sent if m.topic.startswith("t/")
    ]
    assert got == messages
    for write in broker.link.writes:
        if len(write) > 1 and write[0].batched:
            payload = [len(m.payload) for m in write]
            assert sum(payload) <= 64 * 1024 + max(payload)


async def test_a_backlog_of_one_topic_goes_in_64_kb_writes(broker: FakeBroker) -> None:
    """Telemetry-sized messages queued while the sender waits go out in writes of ~64 KB."""
    connector = MqttConnector("broker", max_in_flight=10_000, link=broker)
    send_many = connector.batch_publisher("t/a")
    async with connector:
        send_many([b"x" * 250] * 2_000)  # all in the buffer before the sender looks
        await connector.flush(5)
        sizes = [len(write) for write in data_writes(broker.link)]
    assert sum(sizes) == 2_000
    assert max(sizes) <= 64 * 1024 // 250 + 1
    assert min(sizes[:-1]) >= 64 * 1024 // 250 - 1
