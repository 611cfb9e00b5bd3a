"""What the connector adds around one aiomqtt/paho client: sockets, TLS, the connect thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiomqtt

__all__ = [
    "ConnectThread",
    "TrackingContext",
    "check_aiomqtt",
    "disable_nagle",
    "fast_wire_supported",
]


FAST_PATH_VARIABLE = "CASCADE_MQTT_FAST_PATH"

# What the connector needs of aiomqtt.Client beyond its public API (closing a connection
# whatever its state, failing an attempt the broker hung up on); checked before connecting.
_AIOMQTT_NAMES = ("_client", "_connected", "_disconnected", "_misc_task", "_lock")
_aiomqtt_checked: list[str] = []  # the missing names, once checked in this process


def check_aiomqtt() -> None:
    """Raise ``RuntimeError`` naming what is missing if this aiomqtt lacks what we rely on.

    The names are instance attributes, so one throwaway client (no connection)
    is made once per process. Called by ``connect()``: a future aiomqtt that
    renamed one fails there with this message, not with an ``AttributeError``
    in a background task.
    """
    import aiomqtt
    from aiomqtt.client import Client  # the installed class, whatever stands in for aiomqtt.Client

    if not _aiomqtt_checked:
        probe = Client("localhost")
        _aiomqtt_checked.append(",".join(n for n in _AIOMQTT_NAMES if not hasattr(probe, n)))
    if _aiomqtt_checked[0]:
        raise RuntimeError(
            f"aiomqtt {getattr(aiomqtt, '__version__', '?')} lacks {_aiomqtt_checked[0]}, which "
            "MqttConnector relies on; install the aiomqtt version cascade-connector-mqtt pins "
            "(pip install 'cascade-connector-mqtt' resolves it)"
        )


def fast_wire_supported(paho: Any) -> bool:
    """Whether this paho has the private parts the sender's fast path relies on.

    The fast path encodes PUBLISH packets itself and queues them through
    paho 2.x internals; with a paho that lacks any of them, every message goes
    through paho's public ``publish()`` instead: slower, same behaviour.
    ``CASCADE_MQTT_FAST_PATH=off`` in the environment chooses that way too
    (the tests run both ways; and a way out, should a paho release break it).
    """
    if os.environ.get(FAST_PATH_VARIABLE, "on").lower() in ("0", "off", "false", "no"):
        return False
    names = ("_packet_queue", "_mid_generate", "_handle_pubackcomp", "_in_packet", "_out_messages")
    return all(hasattr(paho, name) for name in names)


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
