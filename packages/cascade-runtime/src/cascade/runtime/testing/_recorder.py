"""EventRecorder: an engine's events, kept in order, with a way to wait for a condition on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._events import Event

__all__ = ["EventRecorder", "eventually"]


class EventRecorder:
    """An ``engine.events`` handler that keeps every event and wakes those waiting on them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once ``predicate()`` holds, checked after each event; TimeoutError after
        ``timeout`` seconds."""

        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def names(self, kind: type[Event]) -> list[str]:
        """The task names of the recorded events of ``kind``, in order."""
        return [getattr(e, "task_name", "") for e in self.events if isinstance(e, kind)]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for state that no event announces (``engine.stats`` after a broker message).

    Checks every 10 ms; ``AssertionError`` if it does not hold within ``timeout`` seconds.
    Prefer :meth:`EventRecorder.until` wherever an event says it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)
