"""The outgoing buffer: resending after a lost connection, probing, giving up a poison message."""

from __future__ import annotations

from cascade.connectors.mqtt._buffer import OutgoingBuffer


def _buffer_with_in_flight(count: int) -> OutgoingBuffer:
    buffer = OutgoingBuffer(100)
    for n in range(count):
        buffer.add("t", b"%d" % n, 1, False)
    for mid in range(1, count + 1):
        buffer.sent(mid, [buffer.queued.popleft()])
    return buffer


def test_a_lost_connection_requeues_in_order_and_starts_probing() -> None:
    """Unconfirmed messages go back in front, oldest first; the next connection probes."""
    buffer = _buffer_with_in_flight(3)
    buffer.add("t", b"new", 1, False)
    assert buffer.requeue() == (None, 0)
    assert [m.raw for m in buffer.queued] == [b"0", b"1", b"2", b"new"]
    assert buffer.probing
    buffer.sent(10, [buffer.queued.popleft()])
    assert buffer.confirm(10) == 1
    assert not buffer.probing


def test_a_message_lost_alone_every_time_is_given_up() -> None:
    """Alone in flight when max_losses connections in a row were lost: given up, settled."""
    buffer = _buffer_with_in_flight(2)
    buffer.requeue()  # both were in flight: nothing to blame yet
    for attempt in range(1, buffer.max_losses + 1):
        buffer.sent(100 + attempt, [buffer.queued.popleft()])
        given_up, _ = buffer.requeue()
        if attempt < buffer.max_losses:
            assert given_up is None
            assert buffer.queued[0].raw == b"0"
    assert given_up is not None
    assert given_up.raw == b"0"
    assert [m.raw for m in buffer.queued] == [b"1"]
    assert buffer.oldest_pending() == given_up.seq + 1


def test_losses_of_different_messages_do_not_add_up() -> None:
    """Each message has its own count: one that gets confirmed clears the way for the next."""
    buffer = _buffer_with_in_flight(2)
    buffer.requeue()
    for _ in range(buffer.max_losses - 1):
        buffer.sent(1, [buffer.queued.popleft()])
        assert buffer.requeue().given_up is None
    buffer.sent(2, [buffer.queued.popleft()])
    buffer.confirm(2)  # the first got through
    buffer.sent(3, [buffer.queued.popleft()])
    assert buffer.requeue().given_up is None  # the second's first loss, not the first's third
    assert [m.raw for m in buffer.queued] == [b"1"]


def test_requeue_drops_the_oldest_beyond_maxsize_and_says_how_many() -> None:
    """In-flight messages put back into a full queue: the oldest go, and are counted as settled."""
    buffer = OutgoingBuffer(3)
    for n in range(3):
        buffer.add("t", b"%d" % n, 1, False)
    buffer.sent(1, [buffer.queued.popleft(), buffer.queued.popleft()])
    for n in range(3, 5):
        buffer.add("t", b"%d" % n, 1, False)
    assert buffer.requeue() == (None, 2)
    assert [m.raw for m in buffer.queued] == [b"2", b"3", b"4"]
    assert buffer.oldest_pending() == 3  # sequence numbers count from 1


def test_clear_ends_probing() -> None:
    """A disconnect forgets the probe as well as the messages."""
    buffer = _buffer_with_in_flight(1)
    buffer.requeue()
    assert buffer.clear() == 1
    assert not buffer.probing


def _qos0_run(buffer: OutgoingBuffer, mid: int, count: int) -> None:
    for n in range(count):
        buffer.add("t", b"%d-%d" % (mid, n), 0, False)
    buffer.sent(mid, [buffer.queued.popleft() for _ in range(count)])


def test_a_qos0_run_waits_for_a_later_answer() -> None:
    """Written (paho's on_publish) settles nothing; the answer to a later request settles it."""
    buffer = OutgoingBuffer(100)
    _qos0_run(buffer, 1, 3)
    assert buffer.unrequested == 3
    assert buffer.confirm(1) == 0  # written
    buffer.request(2)
    assert buffer.unrequested == 0
    assert buffer.confirm(2) == 3
    assert (len(buffer), buffer.in_flight) == (0, {})


def test_an_answer_confirms_every_earlier_request() -> None:
    """Requests answered out of order: the later answer settles the earlier requests' runs too."""
    buffer = OutgoingBuffer(100)
    _qos0_run(buffer, 1, 2)
    buffer.add("t", b"q1", 1, False)
    buffer.sent(2, [buffer.queued.popleft()])  # a QoS 1 message asks for the run before it
    _qos0_run(buffer, 3, 1)
    buffer.request(4)
    assert buffer.confirm(4) == 3  # runs 1 and 3; the QoS 1 message waits for its own PUBACK
    assert buffer.confirm(2) == 1
    assert len(buffer) == 0


def test_a_lost_connection_resends_unconfirmed_qos0_and_counts_them() -> None:
    """Unconfirmed QoS 0 messages go back in front; resent counts them when handed again."""
    buffer = OutgoingBuffer(100)
    _qos0_run(buffer, 1, 2)
    buffer.request(2)
    assert buffer.confirm(2) == 2
    _qos0_run(buffer, 3, 2)
    buffer.request(4)  # never answered
    assert buffer.requeue() == (None, 0)
    assert [m.raw for m in buffer.queued] == [b"3-0", b"3-1"]
    assert buffer.unrequested == 0
    assert buffer.confirm(4) == 0  # a request of the lost connection means nothing now
    buffer.add("t", b"new", 0, False)
    buffer.sent(5, [buffer.queued.popleft()])
    buffer.sent(6, [buffer.queued.popleft(), buffer.queued.popleft()])
    assert buffer.resent == 2
