"""``Writer``: the recorder's one bounded queue, drained into the history in batches by one task.

Each batch is stored in a worker thread (``asyncio.to_thread``) in one transaction, with the
gap and refusal counts not written yet. A write the database cannot take now
(:class:`HistoryError`: server down, disk full, locked) keeps its batch and is retried with
exponential backoff while the queue fills behind it; once the queue is full, new messages are
dropped and counted. With ``keep``/``keep_logs`` the history is pruned between writes.

The writer says when it falls behind while it happens, not only in the runs' missing counts
afterwards: once :data:`BEHIND_AT` of its queue is taken it is ``behind`` (a warning, and the
recorder's stats and metrics say so) until the queue is back under :data:`CAUGHT_UP_AT` of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable

from cascade.connector_kit import RateLimitedLogger
from cascade.reader import SourceGaps

from .._errors import HistoryError
from .._history import History
from .._received import Received
from ..records._records import Stored
from ._gaps import RecorderGaps
from ._intake import Counts, Intake
from ._pace import Pace

__all__ = ["Writer"]

_PRUNE_EVERY = 60.0  # seconds between two prunings when there was nothing to prune
BEHIND_AT = 0.1
"""The share of its queue taken from which the writer says it is behind (it drops at 1.0)."""
CAUGHT_UP_AT = 0.02
"""The share of its queue under which a writer that was behind has caught up (the gap keeps a
writer at the edge from flapping)."""


class Writer:
    """What the recorder queued, written to ``history`` as ``name``: :meth:`put` (never waits),
    :meth:`wake` (counts wait to be written), :meth:`start`, :meth:`idle`, :meth:`stop`.

    Its counters (``stored``, ``duplicates``, ``rejected``, ``refused``, ``dropped``,
    ``write_errors``, ``last_error``) are the recorder's :class:`RecorderStats` for what was
    queued.
    """

    def __init__(
        self,
        history: History,
        intake: Intake,
        gaps: RecorderGaps,
        *,
        name: str,
        max_queue: int,
        batch_size: int,
        linger: float,
        keep: float | None,
        keep_logs: float | None,
        retry: tuple[float, float],
        clock: Callable[[], float],
        log: RateLimitedLogger,
    ) -> None:
        self.history = history
        self.name = name
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.linger = linger
        self.keep = keep
        self.keep_logs = keep_logs
        self._intake = intake
        self._gaps = gaps
        self._retry = retry
        self._clock = clock
        self._log = log
        self._pace = Pace(linger, batch_size)
        self._queue: deque[Received] = deque()
        self._pending: list[Received] = []  # the batch being written (kept while it fails)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._next_prune = 0.0
        self.stored = self.duplicates = self.rejected = self.refused = 0
        self.dropped = self.write_errors = 0
        self.last_error: str | None = None
        self.behind_since: float | None = None
        """When the queue last reached :data:`BEHIND_AT` of ``max_queue`` (``None``: it is
        not behind)."""
        self.times_behind = 0
        """How many times it fell behind since it started."""

    @property
    def queued(self) -> int:
        """Messages waiting to be written, the batch being written included."""
        return len(self._queue) + len(self._pending)

    @property
    def oldest(self) -> float | None:
        """When the oldest message waiting was received (``None``: none waits)."""
        oldest = self._pending[0] if self._pending else self._queue[0] if self._queue else None
        return oldest.received_at if oldest is not None else None

    def put(self, item: Received) -> None:
        """Queue ``item``; beyond ``max_queue`` it is dropped and counted."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            self._log.warning("queue-full", "recorder queue full (%d): dropped", self.max_queue)
            return
        if not queue:  # else the writer is awake already, and not idle
            self.wake()
        queue.append(item)
        if self.behind_since is None and len(queue) >= self.max_queue * BEHIND_AT:
            self._fell_behind()
        if len(queue) == self.batch_size:
            self._pace.full()

    def wake(self) -> None:
        """Something waits to be written (a message, a refusal's count)."""
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the writing task (once)."""
        if self._task is not None:
            return
        self._closing = False
        self._pace = Pace(self.linger, self.batch_size)
        self._task = asyncio.create_task(self._loop(), name="cascade-history-writer")

    async def idle(self, timeout: float | None = None) -> None:
        """Until everything queued so far is written (or counted); ``TimeoutError`` after
        ``timeout`` seconds."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, timeout: float) -> None:
        """Write what is queued for at most ``timeout`` seconds, then stop; what is left
        (the database is down) is counted ``dropped``. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._pace.release()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = self.queued
        if left:
            self.dropped += left
            self._log.warning("stopped", "recorder stopped with %d messages unwritten", left)
        self._queue.clear()
        self._pending = []
        self._idle.set()

    async def _loop(self) -> None:
        delay, longest = self._retry
        backoff = delay
        while True:
            if not self._pending:
                if not self._queue and not self._intake.unwritten:
                    if self._closing:
                        if await self._write_counts():
                            return
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, longest)
                        continue
                    self._idle.set()
                    await self._maybe_prune()
                    self._wake.clear()
                    if not self._queue and not self._intake.unwritten:
                        await self._wake.wait()
                    continue
                await self._pace.ready(len(self._queue))
                count = min(self.batch_size, len(self._queue))
                self._pending = [self._queue.popleft() for _ in range(count)]
            self._gaps.sweep()
            gaps, counts = self._gaps.changes()
            counted = self._intake.counts()
            try:
                result = await self._store(self._pending, gaps, counted)
            except HistoryError as exc:
                self._intake.keep(counted)
                self._failed(exc)
                self._log.warning("write", "history write failed (will retry): %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, longest)
                continue
            except Exception:  # a fault of ours: it must not end the recording
                self.rejected += len(self._pending)
                self._log.log(
                    logging.ERROR,
                    "store-fault",
                    "could not store a batch of %d messages (rejected): a fault of the recorder",
                    len(self._pending),
                    exc_info=True,
                )
                self._pending = []
                continue
            backoff = delay
            self._gaps.written(counts)
            self._pending = []
            self.stored += result.stored
            self.duplicates += result.duplicates
            self.rejected += result.rejected
            self.refused += result.refused
            self._caught_up()
            await self._maybe_prune()

    def _fell_behind(self) -> None:
        self.behind_since = self._clock()
        self.times_behind += 1
        self._log.warning(
            "behind",
            "recorder %s is falling behind: %d messages queued (it drops past %d); the "
            "database or this machine does not keep up with the broker",
            self.name,
            self.queued,
            self.max_queue,
        )

    def _caught_up(self) -> None:
        if self.behind_since is not None and self.queued <= self.max_queue * CAUGHT_UP_AT:
            self._log.log(
                logging.INFO,
                "caught-up",
                "recorder %s caught up after %.0f s behind (%d dropped in all)",
                self.name,
                self._clock() - self.behind_since,
                self.dropped,
            )
            self.behind_since = None

    def _failed(self, exc: HistoryError) -> None:
        self.write_errors += 1
        self.last_error = str(exc)

    async def _store(
        self, batch: list[Received], gaps: dict[str, SourceGaps], counted: Counts
    ) -> Stored:
        """Write ``batch`` with the counts, in a worker thread (``HistoryError``)."""
        refused, vouched, claims, displaced = counted
        store = functools.partial(
            self.history.store,
            batch,
            gaps=gaps,
            recorder=self.name,
            refused=refused,
            vouched=vouched,
            claims=claims,
            displaced=displaced,
        )
        return await asyncio.to_thread(store)

    async def _write_counts(self) -> bool:
        """Write the gap and refusal counts not written yet (the recorder stops); whether
        that is done."""
        gaps, counts = self._gaps.changes()
        counted = self._intake.counts()
        if not gaps and not any(counted):
            return True
        try:
            await self._store([], gaps, counted)
        except HistoryError as exc:
            self._intake.keep(counted)
            self._failed(exc)
            return False
        self._gaps.written(counts)
        return True

    async def _maybe_prune(self) -> None:
        if (self.keep is None and self.keep_logs is None) or self._clock() < self._next_prune:
            return
        pruned = 0
        try:
            if self.keep_logs is not None:
                now = self._clock()
                pruned += await asyncio.to_thread(self.history.prune_logs, now - self.keep_logs)
            if self.keep is not None:
                pruned += await asyncio.to_thread(self.history.prune, self._clock() - self.keep)
        except HistoryError as exc:
            self._log.warning("prune", "pruning the history failed: %s", exc)
        # more to prune: again soon, between writes; else in a minute
        self._next_prune = self._clock() + (1.0 if pruned else _PRUNE_EVERY)
