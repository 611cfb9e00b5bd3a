"""``connect()`` and ``disconnect()`` against each other, in any order, from any event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cascade.interfaces import ConnectError

from ._supervisor import Supervisor

__all__ = ["Lifecycle"]


class Lifecycle:
    """Starts and stops the supervisor for the connector's ``connect()`` and ``disconnect()``.

    Both are idempotent. A ``connect()`` while another connects waits for it
    (one lock per event loop: a lock is bound to its loop); a
    ``disconnect()`` while connecting wins (each ``connect()`` notes the
    count of ``disconnect()`` calls it started under); a ``connect()`` while
    a ``disconnect()`` shuts down starts once that is done. The shutdown runs
    in a task of its own, so that a caller cancelled meanwhile cannot leave
    it half done.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        check: Callable[[], None],
        flush_timeout: float,
    ) -> None:
        self._supervisor = supervisor
        self._check = check
        self._flush_timeout = flush_timeout
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._disconnects = 0  # disconnect() calls: a connect() called before one gives up
        self._stopping: asyncio.Task[None] | None = None  # a disconnect()'s shutdown under way

    async def connect(self, require: bool) -> None:
        """``MqttConnector.connect()``."""
        self._check()
        supervisor = self._supervisor
        disconnects = self._disconnects
        ran = False
        async with self._connecting():
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            supervisor.reset_if_abandoned()
            if not supervisor.started and self._disconnects == disconnects:
                await supervisor.begin(require, lambda: self._disconnects != disconnects)
                ran = True
        if not require:
            return
        if self._disconnects != disconnects:
            raise ConnectError(*supervisor.node, "disconnect() was called while connecting")
        if not ran and not supervisor.ever_connected:  # an earlier connect() without require
            raise ConnectError(
                *supervisor.node, "not connected yet: an earlier connect() keeps trying"
            )

    def _connecting(self) -> asyncio.Lock:
        """The lock connect() holds, one per event loop."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def disconnect(self) -> None:
        """``MqttConnector.disconnect()``."""
        supervisor = self._supervisor
        self._disconnects += 1
        if not supervisor.started:
            await supervisor.abandon()
            if self._stopping is not None:  # another disconnect() is under way
                await asyncio.shield(self._stopping)
            return
        supervisor.halt()  # from here on, publish() drops
        where = supervisor.where
        stopping = self._stopping = asyncio.create_task(
            supervisor.shut_down(self._flush_timeout, where), name="cascade-mqtt-stop"
        )
        stopping.add_done_callback(self._stopped)
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError:
            # The caller stopped waiting (an engine's shutdown_timeout): what is not confirmed
            # by now is counted as dropped now, so the counts it reads next are final. The
            # shutdown itself goes on (offline status, DISCONNECT), bounded as ever.
            supervisor.discard_unsent()
            raise

    def _stopped(self, stopping: asyncio.Task[None]) -> None:
        if self._stopping is stopping:
            self._stopping = None
