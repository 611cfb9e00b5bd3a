"""The bulk reader: packets split from large reads, QoS 0 PUBLISH taken directly, others to paho."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.connectors.mqtt._paho._reader import BulkReader
from cascade.connectors.mqtt.testing import Incoming


def publish_qos0(topic: str, payload: bytes, retain: bool) -> bytes:
    """A QoS 0 PUBLISH packet (MQTT 3.1.1), written out here as the specification gives it."""
    raw = topic.encode()
    rest = len(raw).to_bytes(2, "big") + raw + payload
    length, size = b"", len(rest)
    while True:
        size, digit = divmod(size, 128)
        length += bytes([digit | (0x80 if size else 0)])
        if not size:
            return bytes([0x30 | retain]) + length + rest


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _publish5(topic: str, payload: bytes, ids: tuple[int, ...], other: bytes = b"") -> bytes:
    """A QoS 0 MQTT 5 PUBLISH with subscription identifiers (and ``other`` raw properties)."""
    raw = topic.encode()
    props = b"".join(b"\x0b" + _varint(number) for number in ids) + other
    body = len(raw).to_bytes(2, "big") + raw + _varint(len(props)) + props + payload
    return b"\x30" + _varint(len(body)) + body


class FakePaho:
    """The private parts of paho the reader uses; packets it is handed are recorded."""

    def __init__(self, sock: socket.socket, rc: int = 0) -> None:
        self._sock = sock
        self._msgtime_mutex = threading.Lock()
        self._last_bytes_received = 0.0
        self._in_packet: dict[str, Any] = {}
        self.handed: list[tuple[int, bytes]] = []
        self.lost: list[int] = []
        self._rc = rc

    def _packet_handle(self) -> int:
        self.handed.append((self._in_packet["command"], bytes(self._in_packet["packet"])))
        assert self._in_packet["remaining_length"] == len(self._in_packet["packet"])
        return self._rc

    def _loop_rc_handle(self, rc: int) -> int:
        self.lost.append(rc)
        self._sock = None  # type: ignore[assignment]
        return rc

    def _call_socket_register_write(self) -> None:  # pragma: no cover - TLS only
        pass


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    yield ours, broker
    ours.close()
    broker.close()


def _reader(sock: socket.socket, paho: FakePaho, *, mqtt5: bool = False) -> tuple[
    BulkReader, list[Incoming], list[tuple[str, str]], list[BaseException]
]:  # fmt: skip
    got: list[Incoming] = []
    unreadable: list[tuple[str, str]] = []
    failed: list[BaseException] = []
    reader = BulkReader(
        paho, sock, mqtt5=mqtt5, deliver=got.append,
        unreadable=lambda t, r: unreadable.append((t, r)), failed=failed.append,
    )  # fmt: skip
    return reader, got, unreadable, failed


def test_publishes_and_other_packets_in_order(pair: tuple[socket.socket, socket.socket]) -> None:
    """QoS 0 PUBLISH become Incoming; PINGRESP, SUBACK and a QoS 1 PUBLISH go to paho as read."""
    ours, broker = pair
    paho = FakePaho(ours)
    reader, got, _, failed = _reader(ours, paho)
    qos1 = b"\x32\x0a\x00\x03a/b\x00\x07hey"
    broker.sendall(
        publish_qos0("cascade/t/1", b'{"n":1}', retain=False)
        + b"\xd0\x00"  # PINGRESP
        + publish_qos0("cascade/t/2", b"x" * 300, retain=True)  # two length bytes
        + b"\x90\x03\x00\x01\x01"  # SUBACK
        + qos1
    )
    reader()
    assert got == [
        Incoming("cascade/t/1", b'{"n":1}', 0, False),
        Incoming("cascade/t/2", b"x" * 300, 0, True),
    ]
    assert paho.handed == [(0xD0, b""), (0x90, b"\x00\x01\x01"), (0x32, qos1[2:])]
    assert failed == []
    assert paho.lost == []
    assert paho._last_bytes_received > 0  # paho's keepalive sees the broker alive


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8))
def test_any_split_of_the_stream_gives_the_same_messages(cuts: list[int]) -> None:
    """Whatever the reads cut (mid header, mid length, mid payload), the messages are the same."""
    stream = (
        b"".join(
            publish_qos0(f"t/{i}", bytes([i]) * (i * 37 % 300), retain=bool(i % 2))
            for i in range(20)
        )
        + b"\xd0\x00"
    )
    ours, broker = socket.socketpair()
    with ours, broker:
        ours.setblocking(False)
        paho = FakePaho(ours)
        reader, got, _, _ = _reader(ours, paho)
        pos = 0
        for cut in [*cuts, len(stream)]:
            chunk = stream[pos : pos + cut]
            if chunk:
                broker.sendall(chunk)
                reader()
            pos += len(chunk)
        assert [m.topic for m in got] == [f"t/{i}" for i in range(20)]
        assert [m.payload for m in got] == [bytes([i]) * (i * 37 % 300) for i in range(20)]
        assert paho.handed == [(0xD0, b"")]


def test_mqtt5_subscription_identifiers(pair: tuple[socket.socket, socket.socket]) -> None:
    """MQTT 5: subscription identifiers are read; a PUBLISH with other properties goes to paho."""
    ours, broker = pair
    paho = FakePaho(ours)
    reader, got, _, _ = _reader(ours, paho, mqtt5=True)
    content_type = b"\x03\x00\x04json"
    other = _publish5("a/c", b"{}", (), content_type)
    broker.sendall(_publish5("a/b", b"{}", (3, 300)) + _publish5("a/n", b"", ()) + other)
    reader()
    assert got == [Incoming("a/b", b"{}", 0, False, (3, 300)), Incoming("a/n", b"", 0, False, ())]
    assert paho.handed == [(0x30, other[2:])]


def test_topics_mqtt_does_not_allow_are_reported(pair: tuple[socket.socket, socket.socket]) -> None:
    """A wildcard (RabbitMQ's '*' turned '+') or bytes that are not UTF-8: reported, skipped."""
    ours, broker = pair
    reader, got, unreadable, _ = _reader(ours, FakePaho(ours))
    bad = b"\x30\x06\x00\x02\xff\xfe{}"
    broker.sendall(publish_qos0("task/api_+", b"{}", retain=True) + bad)
    broker.sendall(publish_qos0("ok", b"{}", retain=False))
    reader()
    assert [m.topic for m in got] == ["ok"]
    assert unreadable[0][1] == "a topic name with a wildcard in it"
    assert unreadable[1][1].startswith("not UTF-8")


def test_the_broker_closing_ends_the_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    """EOF: paho's own handling of a lost connection (which tells aiomqtt), after what was read."""
    ours, broker = pair
    paho = FakePaho(ours)
    reader, got, _, _ = _reader(ours, paho)
    broker.sendall(publish_qos0("t", b"{}", retain=False))
    broker.shutdown(socket.SHUT_WR)
    reader()
    reader()
    assert [m.topic for m in got] == ["t"]
    assert paho.lost == [7]  # MQTT_ERR_CONN_LOST


def test_a_malformed_length_is_a_protocol_error(pair: tuple[socket.socket, socket.socket]) -> None:
    """A remaining length of five bytes (MQTT allows four): the connection ends."""
    ours, broker = pair
    paho = FakePaho(ours)
    reader, _, _, _ = _reader(ours, paho)
    broker.sendall(b"\x30\xff\xff\xff\xff\x01")
    reader()
    assert paho.lost == [2]  # MQTT_ERR_PROTOCOL


def test_a_closed_socket_is_not_read(pair: tuple[socket.socket, socket.socket]) -> None:
    """Once paho has let go of the socket (closed, reconnected), the reader does nothing."""
    ours, broker = pair
    paho = FakePaho(ours)
    reader, got, _, _ = _reader(ours, paho)
    paho._sock = None  # type: ignore[assignment]
    broker.sendall(publish_qos0("t", b"{}", retain=False))
    reader()
    assert got == []


class Backlog:
    """A socket with ``data`` waiting in the kernel: each ``recv`` takes what it asks for."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def recv(self, size: int) -> bytes:
        if not self.data:
            raise BlockingIOError
        taken = bytes(self.data[:size])
        del self.data[:size]
        return taken


def test_a_backlog_is_read_a_slice_a_call() -> None:
    """Megabytes waiting are read at most 512 KiB a call (the loop turns between: a dashboard's
    HTTP answers waited 200 ms behind one 4 MiB read), and every message comes, in order."""
    payloads = [str(n).encode().ljust(1000, b" ") for n in range(3000)]  # ~3 MB
    sock = Backlog(b"".join(publish_qos0("cascade/t", p, retain=False) for p in payloads))
    paho = FakePaho(sock)  # type: ignore[arg-type]
    reader, got, _, failed = _reader(sock, paho)  # type: ignore[arg-type]
    calls = 0
    while sock.data or calls == 0:
        before = len(got)
        reader()
        calls += 1
        assert (len(got) - before) * 1000 <= 512 * 1024
    assert [m.payload for m in got] == payloads
    assert calls >= 6
    assert failed == []
