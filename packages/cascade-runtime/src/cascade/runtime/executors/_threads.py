"""Plain-function tasks in threads of the engine's process: the default executor."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from cascade.interfaces import Hold
from cascade.interfaces.wire import QUEUED

if TYPE_CHECKING:
    from .._tracing import AttemptSpan
    from ..workflow._task import Task
    from ._executor import Attempt

__all__ = ["RunThreads", "ThreadExecutor"]


class ThreadExecutor:
    """Plain-function tasks in a thread pool of the engine's process, one pool a run: the
    engine's default.

    ``max_workers``: threads a run uses at most (default ``min(max_concurrency, 32)``). Good
    for tasks that wait (I/O, subprocesses, C code that releases the GIL); tasks of Python
    code that computes take turns on one core (the GIL): :class:`ProcessExecutor` spreads
    them over the machine's cores. A thread cannot be stopped: an attempt past its timeout,
    or running when its run is cancelled, runs on to its end and its result is discarded.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers

    def check(self, task: Task[Any, Any]) -> None:
        """Any function runs in a thread: nothing to check."""

    def start_run(self, max_concurrency: int) -> RunThreads:
        """A run's thread pool, made when its first task starts."""
        return RunThreads(self.max_workers or min(max_concurrency, 32))

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers})"


class RunThreads:
    """One run's threads: its plain-function tasks, and its sync resources' setups.

    It counts the attempts in its pool: one taken while its threads are all busy waits
    (``Attempt.waiting``), and the thread that starts it sets its ``began_at``, which the run
    reads (nothing more for the thread to do: no call to the run's loop); one taken while a
    thread is free starts at once.
    """

    abandoned = "its thread runs on to its end; the result is discarded"

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._loop = asyncio.get_running_loop()
        self._busy = 0  # attempts in the pool that have not ended (ended: run or cancelled)
        self._lock = threading.Lock()  # _busy goes up on the loop, down in the threads
        self._waiting: dict[Future[Any], str] = {}  # attempts that waited: their task ids
        self.queued = Hold(type=QUEUED, executor="threads", workers=max_workers)

    def pool(self) -> ThreadPoolExecutor:
        """The run's thread pool, made on first use."""
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="cascade-task"
            )
        return pool

    def take(self, attempt: Attempt) -> asyncio.Future[Any]:
        """``attempt`` in a thread, as :meth:`submit` runs a call; if the threads are all
        busy, it waits (``attempt.waiting``) and its thread sets ``attempt.began_at`` when it
        starts it. Nothing of it is kept where it runs."""
        call: Callable[[], Any] = functools.partial(attempt.fn, *attempt.args, **attempt.kwargs)
        span = attempt.span
        if span is not None:
            call = span.bind(call)
        call = functools.partial(contextvars.copy_context().run, call)
        with self._lock:
            waits = self._busy >= self.max_workers
            self._busy += 1
        if waits:
            attempt.waiting = self.queued
            call = functools.partial(_starts, attempt, call)
        work = (self._pool or self.pool()).submit(call)
        if waits:
            self._waiting[work] = attempt.node.lazy.task_id
        work.add_done_callback(self._ended)
        grant = attempt.grant
        if grant is not None:
            release = grant.release
            work.add_done_callback(lambda _: release())
        return asyncio.wrap_future(work, loop=self._loop)

    def _ended(self, work: Future[Any]) -> None:
        """An attempt's thread is done with it, or it was cancelled before one started it."""
        with self._lock:
            self._busy -= 1
            if self._waiting:
                self._waiting.pop(work, None)

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None = None,
        amounts: Mapping[str, float] | None = None,
    ) -> asyncio.Future[Any]:
        """``fn`` in a thread, in a copy of the caller's context (its ``current_task()``, its
        log scope) and with ``span`` current there; ``ended`` called when the thread is done
        with it; ``amounts`` are the engine's machine's, held by the engine."""
        call: Callable[[], Any] = functools.partial(fn, *args, **kwargs)
        if span is not None:
            call = span.bind(call)
        pool = self._pool or self.pool()
        call = functools.partial(contextvars.copy_context().run, call)
        if ended is None:
            return self._loop.run_in_executor(pool, call)
        work = pool.submit(call)
        work.add_done_callback(lambda _: ended())
        return asyncio.wrap_future(work, loop=self._loop)

    def started(self, task_id: str) -> bool:
        """Whether a thread started the attempt of ``task_id`` (one that waits for a thread
        has not: it is cancelled with its run)."""
        for work, waiting in list(self._waiting.items()):
            if waiting == task_id:
                return work.running() or work.done()
        return True

    def close(self, *, wait: bool) -> None:
        """Shut the pool down (if the run made one), cancelling what has not started."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)


def _starts(attempt: Attempt, call: Callable[[], Any]) -> Any:
    """In the thread: an attempt that waited for one starts (its run reads when)."""
    attempt.began_at = time.perf_counter()
    return call()
