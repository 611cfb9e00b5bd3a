"""``MetricsServer``: ``GET /metrics`` on the reader's own event loop, for `cascade record`.

Not prometheus_client's ``start_http_server``: that serves from a thread, and a
scrape there would read the state while the loop changes it. This server
answers in the loop, between two messages, so a scrape sees one consistent
state. It is deliberately small: one request per connection, a request head
of at most :data:`MAX_HEAD` bytes read within :data:`READ_TIMEOUT` seconds,
``GET /metrics`` only (404 elsewhere, 405 for other methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

__all__ = ["MAX_HEAD", "READ_TIMEOUT", "MetricsServer"]

MAX_HEAD = 8 * 1024
"""Bytes of a request's line and headers read at most; a longer head gets 431."""

READ_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""


class MetricsServer:
    """Serves ``render()`` (its bytes, as ``content_type``) at ``/metrics`` on ``sock``.

    ``sock`` is a bound, listening socket (see :func:`bind`); the
    server owns it from :meth:`start` on and closes it in :meth:`stop`.
    """

    def __init__(self, sock: socket.socket, render: Callable[[], bytes], content_type: str) -> None:
        self.sock = sock
        self.render = render
        self.content_type = content_type
        self.served = 0
        """Scrapes answered with 200."""
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose for port 0)."""
        port: int = self.sock.getsockname()[1]
        return port

    async def start(self) -> None:
        """Start accepting connections."""
        self._server = await asyncio.start_server(self._serve, sock=self.sock, limit=MAX_HEAD)

    async def stop(self) -> None:
        """Stop accepting, close the socket, end the connections being served."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            if hasattr(server, "close_clients"):  # Python 3.13+: do not wait for idle clients
                server.close_clients()
            await server.wait_closed()
        self.sock.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
            head = (
                f"HTTP/1.1 {status}\r\ncontent-type: "
                f"{self.content_type if status.startswith('200') else 'text/plain'}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[str, bytes]:
        """The status line and body for the request ``reader`` brings."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.LimitOverrunError:
            return "431 Request Header Fields Too Large", b"request head too large\n"
        except asyncio.IncompleteReadError:
            return "400 Bad Request", b"incomplete request\n"
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return "400 Bad Request", b"not an HTTP/1 request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return "404 Not Found", b"only /metrics is served here\n"
        if method != b"GET":
            return "405 Method Not Allowed", b"GET /metrics\n"
        self.served += 1
        return "200 OK", self.render()
