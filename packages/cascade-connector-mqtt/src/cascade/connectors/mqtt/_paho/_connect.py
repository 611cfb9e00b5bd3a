"""Around one aiomqtt/paho client's connection: sockets, TLS, the connect thread."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

if TYPE_CHECKING:
    import aiomqtt

__all__ = [
    "ConnectThread",
    "TrackingContext",
    "disable_nagle",
    "persistent_session",
    "quick_ack",
]


def disable_nagle(sock: object) -> None:
    """Send small packets at once (TCP_NODELAY), where the transport is TCP.

    The sender batches telemetry itself; what Nagle's algorithm would hold
    back are the small request/reply packets (SUBSCRIBE, the subscribe
    marker, control messages), and against the peer's delayed ACK it held
    them ~40 ms. Other transports (Unix sockets, websockets) are left as they are.
    """
    setsockopt = getattr(sock, "setsockopt", None)
    if setsockopt is not None:
        with contextlib.suppress(OSError):
            setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quick_ack(sock: Any) -> None:
    """Acknowledge what arrives next at once, not after TCP's delayed-ACK timer (Linux).

    A broker that leaves Nagle's algorithm on (mosquitto's default) holds the second of two
    answers written back to back (a PUBACK behind a SUBACK, the offline's PUBACK behind a
    flush's) until the first is acknowledged; a delayed ACK makes that ~40 ms, each time. The
    kernel leaves quick-ACK mode by itself, so the reader sets it again after every read.
    Elsewhere (no ``TCP_QUICKACK``, not TCP) it does nothing.
    """
    if _TCP_QUICKACK is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


class ConnectThread:
    """paho's blocking connect(), which aiomqtt runs in a thread that no cancellation stops.

    An abandoned attempt (failed, timed out, cancelled) must leave no
    connection behind, and must not wait for the thread either (DNS and TCP
    can take any time): a thread that has not started never connects, and
    one still connecting closes what it opened itself once it is done.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._abandoned = False
        self._state = "waiting"  # then "connecting", then "done"
        self._done: asyncio.Future[None] = loop.create_future()
        connect = getattr(client, "_client_connect", None)
        if connect is None:  # another aiomqtt (or a test double): nothing to guard
            return

        def run() -> None:
            with self._lock:
                if self._abandoned:
                    raise ConnectionAbortedError("connection attempt abandoned")
                self._state = "connecting"
            try:
                connect()
            finally:
                late = self._finish()
                # Queued behind what paho's socket callbacks queued (a reader, aiomqtt's task).
                try:
                    if late:
                        loop.call_soon_threadsafe(close, client)
                    else:
                        loop.call_soon_threadsafe(_resolve, self._done)
                except RuntimeError:  # the loop is closed: no callback will run, close here
                    if late:
                        with contextlib.suppress(Exception):
                            client._client._reset_sockets()

        client._client_connect = run  # type: ignore[method-assign]

    def _finish(self) -> bool:
        """The thread is done connecting; returns whether the attempt was abandoned meanwhile."""
        with self._lock:
            self._state = "done"
            return self._abandoned

    async def abandon(self) -> None:
        """Give the attempt up; returns once whatever its thread opened is ours to close.

        A thread still connecting closes its connection itself when it is done.
        """
        with self._lock:
            self._abandoned = True
            finished = self._state == "done"
        if finished:
            await self._done  # its socket callbacks have run: the client is complete


def close(client: aiomqtt.Client) -> None:
    """Close the connection of an abandoned attempt, on the event loop."""
    client._client._reset_sockets()
    misc = client._misc_task
    if misc is not None:
        misc.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TrackingContext:
    """An SSLContext stand-in that remembers the sockets it wrapped, to close them on failure."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._sockets: list[ssl.SSLSocket] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = self._context.wrap_socket(*args, **kwargs)
        self._sockets.append(sock)
        return sock

    def close_all(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def persistent_session(mqtt5: bool, expiry: int, options: dict[str, Any]) -> dict[str, Any]:
    """aiomqtt's options for a session the broker keeps ``expiry`` seconds (MQTT 5), or as
    long as it keeps sessions (MQTT 3.1.1, which has no expiry of its own)."""
    if not mqtt5:
        return {"clean_session": False}
    given = options.get("properties")  # the caller's CONNECT properties, kept (a copy)
    new: Any = Properties  # paho's class is untyped
    properties = copy.copy(given) if given is not None else new(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry
    return {"clean_start": False, "properties": properties}
