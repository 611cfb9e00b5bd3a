"""The listening socket a server of Cascade's serves from (the metrics', the dashboard's)."""

from __future__ import annotations

import socket

__all__ = ["bind"]


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
