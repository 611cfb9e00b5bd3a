"""How often the recorder's writer starts a transaction while messages keep coming (:class:`Pace`).

A transaction costs the same whatever its size, and more than a thousand events in it (its
start and commit, the owners of its runs read, each run's row and rollup upserted). A writer
that takes whatever is queued as soon as it can stays busy at any rate, in batches of a few
dozen: below saturation it spends more CPU an event than at it (bench_recorder_cpu.py
``--rate``). So two transactions start at least ``linger`` seconds apart, unless a whole
batch is queued before: a message that comes after a quiet spell is written at once, one in a
steady stream waits at most ``linger`` for the others of its batch.
"""

from __future__ import annotations

import asyncio

from cascade.connector_kit import event_set

__all__ = ["Pace"]


class Pace:
    """The writer's pace: :meth:`ready` before each batch is taken; :meth:`full` when a whole
    batch is queued; :meth:`release` for good (the recorder stops: no more waiting)."""

    def __init__(self, linger: float, batch_size: int) -> None:
        self.linger = linger
        self.batch_size = batch_size
        self._full = asyncio.Event()
        self._released = False
        self._last = float("-inf")  # when the last batch was taken (the loop's clock)

    def full(self) -> None:
        """A whole batch is queued: take it now."""
        self._full.set()

    def release(self) -> None:
        """Never wait again."""
        self._released = True
        self._full.set()

    async def ready(self, length: int) -> None:
        """Wait until a batch may be taken (``length`` messages are queued), and note that it
        is taken: at once after a quiet spell or with a whole batch queued, else once the last
        one was taken ``linger`` seconds ago."""
        loop = asyncio.get_running_loop()
        wait = self._last + self.linger - loop.time()
        if wait > 0 and length < self.batch_size and not self._released:
            self._full.clear()
            await event_set(self._full, wait)
        self._last = loop.time()
