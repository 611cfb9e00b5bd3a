"""The embedded broker on its own event loop thread, for synchronous (session) fixtures."""

from __future__ import annotations

import asyncio
import threading

from .._embedded import EmbeddedBroker

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

    def stop(self) -> None:
        """Stop the broker, the loop and the thread."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._broker.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
