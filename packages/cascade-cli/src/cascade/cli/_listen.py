"""``--listen HOST:PORT`` (and ``--metrics-listen``): where a server of the CLI listens, and
whether that is only this machine."""

from __future__ import annotations

import ipaddress
import socket

from ._address import is_host
from ._context import UsageError

__all__ = ["bind", "is_loopback", "parse_listen"]


def parse_listen(value: str, option: str = "--listen") -> tuple[str, int]:
    """``127.0.0.1:8787``, ``[::1]:8787``, ``0.0.0.0:80`` or ``localhost:0`` (any free port);
    a :class:`UsageError` naming ``option`` for anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{option} must be HOST:PORT, e.g. 127.0.0.1:8787, not {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not is_host(host):
        raise UsageError(f"{option}: {host!r} is not a host name or address")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (the server is handed it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol matters: asyncio sets TCP_NODELAY only on accepted sockets whose proto
    # is TCP, and without it every answer on a kept-alive connection waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock
