"""`cascade dashboard`'s options: where it listens, and failing fast."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import parse_listen
from cascade.dashboard import is_loopback
from cascade.metrics import bind
from cascade.testkit import free_port


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:8787", ("127.0.0.1", 8787)), ("[::1]:0", ("::1", 0)),
     ("0.0.0.0:80", ("0.0.0.0", 80)), ("localhost:9000", ("localhost", 9000))],
)  # fmt: skip
def test_listen_parses_host_and_port(value: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, with IPv6 in brackets."""
    assert parse_listen(value) == expected


def test_only_loopback_counts_as_local() -> None:
    """127.0.0.0/8, ::1 and localhost are local; anything else is not."""
    assert all(map(is_loopback, ["127.0.0.1", "127.3.2.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "example.com"]))


@pytest.mark.parametrize("value", ["8787", "host:", ":80", "h:99999", "h:x"])
def test_bad_listen_exits_2(invoke: Callable[..., Result], value: str) -> None:
    """A --listen that is not HOST:PORT is a usage error."""
    result = invoke("dashboard", "--listen", value)
    assert result.exit_code == 2
    assert "--listen must be HOST:PORT" in result.output


@pytest.mark.parametrize("host", ["\udcff", "a" * 300, "\x1b[2J"])
def test_a_listen_host_no_resolver_takes_exits_2(invoke: Callable[..., Result], host: str) -> None:
    """A --listen host that is no name or address (a shell's invalid bytes, a label over 63
    characters, controls) is one line and exit 2, not a traceback from bind()."""
    result = invoke("dashboard", "--listen", f"{host}:0")
    assert result.exit_code == 2, result.output
    assert "is not a host name or address" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_broker_exits_1_with_a_reason() -> None:
    """No broker: exit 1 with one line, before serving anything."""
    port = free_port()
    result = CliRunner().invoke(
        app, ["dashboard", "--port", str(port), "--timeout", "1", "--listen", "127.0.0.1:0"]
    )
    assert result.exit_code == 1
    assert f"localhost:{port}" in result.output


def test_help_documents_the_token_variable(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--help names --listen, --token, its variable and --demo (on a terminal wide enough for
    the variable's name to fit its column)."""
    monkeypatch.setenv("COLUMNS", "140")
    result = invoke("dashboard", "--help", "--listen", "x")
    for word in ("--listen", "127.0.0.1:8787", "--token", "CASCADE_DASHBOARD_TOKEN", "--demo"):
        assert word in result.output


def test_missing_extra_says_what_to_install(
    invoke: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without starlette/uvicorn: exit 1 naming the extra to install."""
    monkeypatch.setitem(sys.modules, "starlette", None)
    result = invoke("dashboard")
    assert result.exit_code == 1
    assert "pip install 'cascade-cli[dashboard]'" in result.output


def test_a_port_in_use_exits_1_with_a_reason(invoke: Callable[..., Result]) -> None:
    """--listen on a port another socket holds: exit 1 saying so, nothing served."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = invoke("dashboard", "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_the_listening_socket_is_tcp_so_answers_are_not_delayed() -> None:
    """bind() names TCP, so asyncio turns Nagle off on accepted connections (no 40 ms waits)."""
    sock = bind("127.0.0.1", 0)
    with sock, socket.create_connection(sock.getsockname()):
        sock.setblocking(True)
        accepted, _ = sock.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP
