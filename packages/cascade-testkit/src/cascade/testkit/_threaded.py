"""The embedded broker on its own event loop thread, for synchronous (session) fixtures."""

from __future__ import annotations

import asyncio
import threading

from cascade.connectors.mqtt import EmbeddedBroker

__all__ = ["ThreadedEmbeddedBroker"]


class ThreadedEmbeddedBroker:
    """An :class:`EmbeddedBroker` served from a background thread with its own event loop.

    Usable where no event loop runs (session-scoped fixtures, benchmarks).
    """

    is_mosquitto = False
    supports_mqtt5 = False

    def __init__(self) -> None:
        self._broker = EmbeddedBroker()
        self.host = self._broker.host
        self.port = self._broker.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread and the broker; returns once it listens."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="cascade-embedded-broker")
        thread.start()
        self._loop, self._thread = loop, thread
        asyncio.run_coroutine_threadsafe(self._broker.start(), loop).result(timeout=30)

    async def _stop_all(self) -> None:
        """Stop the broker, then end what it left running (client handlers that close
        their connections), as ``asyncio.run`` would: a connection left open when the
        loop closes is an unclosed-transport warning in whatever test runs next."""
        await self._broker.stop()
        current = asyncio.current_task()
        leftover = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)

    def stop(self) -> None:
        """Stop the broker, the loop and the thread."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop_all(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
