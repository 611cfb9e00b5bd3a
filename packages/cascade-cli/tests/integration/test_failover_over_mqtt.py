"""`--host A,B`: a command that meets a dead or hanging-up node goes on to the next one."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.testkit import (
    MOSQUITTO_ONLY,
    NO_MOSQUITTO,
    MosquittoBroker,
    free_port,
    mosquitto_path,
    skip_on_family,
)

pytestmark = skip_on_family("rabbitmq", MOSQUITTO_ONLY.format(family="rabbitmq"))


@pytest.fixture
def node_b() -> Iterator[MosquittoBroker]:
    """A private mosquitto: the node that answers."""
    if mosquitto_path() is None:
        pytest.skip(NO_MOSQUITTO)
    with MosquittoBroker() as broker:
        yield broker


@contextlib.contextmanager
def hanging_up() -> Iterator[int]:
    """A port whose server accepts each connection and closes it unanswered, as a node going
    down does during the handshake; yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # so that the thread sees `closing` (a closed socket's accept blocks)
    closing = threading.Event()

    def serve() -> None:
        while not closing.is_set():
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        closing.set()
        server.close()
        thread.join(5)


def test_status_through_the_second_node_when_the_first_is_down(node_b: MosquittoBroker) -> None:
    """Node A refuses (nothing listens): `status --host A,B` answers through B, in time."""
    hosts = f"127.0.0.1:{free_port()},{node_b.host}:{node_b.port}"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["status", "--json", "--host", hosts, "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) >= {"engines", "constraints"}
    assert time.monotonic() - started < 5


def test_pause_goes_on_past_a_node_that_hangs_up(node_b: MosquittoBroker) -> None:
    """Node A closes the connection during the handshake: the pause is set through B."""
    scope = f"task:failover_{free_port()}"
    with hanging_up() as port:
        hosts = f"127.0.0.1:{port},{node_b.host}:{node_b.port}"
        result = CliRunner().invoke(app, ["pause", scope, "--host", hosts, "--timeout", "5"])
        assert result.exit_code == 0, result.output
    on_b = ["status", "--json", "--host", f"{node_b.host}:{node_b.port}"]
    status = json.loads(CliRunner().invoke(app, on_b).stdout)
    assert [c["type"] for c in status["constraints"] if c["scope"] == scope] == ["pause"]


def test_every_node_down_fails_in_one_line_naming_each() -> None:
    """No node answers within --timeout: exit 1, one line, every node and its cause."""
    a, b = free_port(), free_port()
    hosts = f"127.0.0.1:{a},127.0.0.1:{b}"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["status", "--host", hosts, "--timeout", "1"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert f"127.0.0.1:{a}:" in result.output
    assert f"127.0.0.1:{b}:" in result.output
    assert time.monotonic() - started < 4


@contextlib.contextmanager
def hanging_up_then_forwarding(target: int, hang_ups: int) -> Iterator[tuple[int, list[int]]]:
    """A port that closes its first ``hang_ups`` connections unanswered (a node restarting),
    then pipes each to ``target``; yields the port and the count of connections seen."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    closing = threading.Event()
    seen = [0]
    pipes: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not closing.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            seen[0] += 1
            if seen[0] <= hang_ups:
                connection.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", target))
            sockets.extend((connection, upstream))
            for ends in ((connection, upstream), (upstream, connection)):
                thread = threading.Thread(target=pipe, args=ends, daemon=True)
                thread.start()
                pipes.append(thread)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        closing.set()
        server.close()
        thread.join(5)
        for end in sockets:
            end.close()
        for pipe_thread in pipes:
            pipe_thread.join(5)


def test_one_node_that_hangs_up_for_a_moment_is_tried_again(node_b: MosquittoBroker) -> None:
    """One host closing the handshake twice (restarting, failing over): `status` tries it
    again within its --timeout and answers."""
    with hanging_up_then_forwarding(node_b.port, hang_ups=2) as (port, seen):
        result = CliRunner().invoke(
            app, ["status", "--json", "--host", f"127.0.0.1:{port}", "--timeout", "10"]
        )
        assert result.exit_code == 0, result.output
        assert seen[0] >= 3
    assert set(json.loads(result.stdout)) >= {"engines", "constraints"}


def test_one_node_that_keeps_hanging_up_fails_in_one_line_after_the_timeout() -> None:
    """Hung up on every time: the command fails once its --timeout is spent, in one line
    saying why and how many attempts it made."""
    with hanging_up() as port:
        started = time.monotonic()
        result = CliRunner().invoke(
            app, ["status", "--host", f"127.0.0.1:{port}", "--timeout", "2"]
        )
        took = time.monotonic() - started
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "attempts within 2 s" in lines[0]
    assert 1.5 < took < 6
