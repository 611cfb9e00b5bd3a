"""The sender's QoS 0 runs: what it takes off the queue and the one write it frames them into."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.connectors.mqtt._sender import Sender
from cascade.connectors.mqtt._stats import MqttConnectorStats
from cascade.connectors.mqtt._wire import encode_publish_qos0
from cascade.interfaces.connector_kit import RateLimitedLogger

_message = st.tuples(
    st.sampled_from(["t/a", "t/b", "t/é"]),
    st.one_of(st.binary(max_size=300), st.integers(16_000, 70_000).map(lambda n: b"x" * n)),
    st.sampled_from([0, 0, 0, 1]),
    st.booleans(),
)


def sender_with(messages: list[tuple[str, bytes, int, bool]]) -> Sender:
    stats = MqttConnectorStats()
    sender = Sender(100_000, 1_000, stats, RateLimitedLogger(logging.getLogger("test")))
    for topic, raw, qos, retain in messages:
        sender.buffer.add(topic, raw, qos, retain)
    return sender


@settings(max_examples=100, deadline=None)
@given(messages=st.lists(_message, min_size=1, max_size=40), room=st.integers(1, 50))
def test_a_run_is_the_leading_qos0_messages_framed_as_each_alone(
    messages: list[tuple[str, bytes, int, bool]], room: int
) -> None:
    """A run takes leading QoS 0 messages (at most ``room``, about 64 KB unless one alone is
    larger), framed exactly as each PUBLISH alone; the rest stay queued in order."""
    sender = sender_with(messages)
    queued_before = list(sender.buffer.queued)
    for mqtt5 in (False, True):
        sender = sender_with(messages)
        taken, packets = sender.qos0_run(mqtt5, room)
        leading = 0
        while leading < len(messages) and messages[leading][2] == 0:
            leading += 1
        if leading == 0:
            assert taken == [] and packets == b""
            continue
        assert 1 <= len(taken) <= min(room, leading)
        assert taken == queued_before[: len(taken)]
        assert list(sender.buffer.queued) == queued_before[len(taken) :]
        assert packets == b"".join(
            encode_publish_qos0(m.topic, m.raw, m.retain, mqtt5) for m in taken
        )
        if len(taken) > 1:
            assert sum(len(m.raw) for m in taken) <= 64 * 1024 + max(len(m.raw) for m in taken)


def test_a_long_run_of_one_topic_goes_in_64_kb_writes() -> None:
    """A backlog of telemetry-sized messages is framed in writes of about 64 KB each."""
    sender = sender_with([("t/a", b"x" * 250, 0, False)] * 2_000)
    sizes = []
    while sender.buffer.queued:
        taken, packets = sender.qos0_run(False, 1_000)
        sizes.append(len(taken))
        assert len(packets) == len(taken) * (1 + 2 + 2 + 3 + 250)  # header, topic, payload
    assert sum(sizes) == 2_000
    assert max(sizes) <= 64 * 1024 // 250 + 1
    assert min(sizes[:-1]) >= 64 * 1024 // 250 - 1
