"""Plain-function tasks in worker processes of the engine's machine: :class:`ProcessExecutor`.

One pool an executor, made at its first attempt and kept for every run after (several runs
of a serving engine share it), made again when a worker dies. Workers are started with
``spawn``: a fresh interpreter that imports what it needs (``fork`` would copy the engine's
threads' locks in whatever state they are; ``forkserver`` is not on every system), so a
task's function must be importable there: defined at the top level of a module, or of the
script, which must start its run under ``if __name__ == "__main__":``.

An attempt's ``(fn, args, kwargs)`` is pickled on the run's loop; its ``current_task()`` and
the options of its log scope go with it. What comes back (its result or failure, and its log
lines) is unpickled and its lines taken by the run's logs in the pool's own thread, then the
attempt's future is settled on the run's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from cascade.interfaces import Hold
from cascade.interfaces.wire import QUEUED

from .._errors import ExecutorError, WorkerLost
from .._steps import describe
from ._remote import RemoteAttempt
from ._worker import Lines, Outcome, run_attempt, sendable_function

if TYPE_CHECKING:
    from .._tracing import AttemptSpan
    from ..workflow._task import Task
    from ._executor import Attempt

__all__ = ["ProcessExecutor", "RunProcesses"]


class ProcessExecutor:
    """Plain-function tasks in worker processes: for Python code that computes, which threads
    would run one at a time (the GIL), spread over the machine's cores.

    ``max_workers``: worker processes (default: the machine's CPUs). The pool is made at the
    first attempt and kept for every run of the engines given this executor, until
    :meth:`shutdown` (or the ``with`` block's end, or the process's exit); a run's attempts
    beyond ``max_workers`` wait in its queue, each still holding its run's slot
    (``max_concurrency``).

    What crosses: a task's function (it must be importable in a fresh interpreter: defined at
    the top level of a module, or of a script whose run starts under
    ``if __name__ == "__main__":``; checked before a run starts) and its arguments go pickled,
    its result or exception comes back pickled (one that cannot cross fails the attempt with
    an :class:`~cascade.runtime.ExecutorError` saying why; an exception that cannot is given
    back as one, with its type, text and traceback). ``current_task()`` works in the worker.
    What the attempt logs (and prints, when the engine captures prints) comes back with its
    result and is forwarded as if logged in the engine's process, within the same budgets,
    if the engine's logging lets it through; the lines of an attempt whose worker died are
    lost.

    A worker cannot be stopped without breaking the pool: an attempt past its timeout, or
    running when its run is cancelled, runs on to its end, its result discarded (attempts still
    queued are cancelled). A worker that dies (killed, out of memory) fails every attempt the
    pool held then with :class:`~cascade.runtime.WorkerLost` (each counts: the task's retries
    or hold apply), and the pool is made again for the next attempts.
    """

    sends_calls = True
    """Its attempts run in other processes, their calls sent there: a per-worker resource a
    task injects is made in its worker (``@resource(per_worker=True)``)."""

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._context = multiprocessing.get_context("spawn")
        self._said_lost: tuple[ProcessPoolExecutor, str] | None = None
        self._slots = _Slots(self.max_workers)  # the pool's workers, busy or not
        self.queued = Hold(type=QUEUED, executor="processes", workers=self.max_workers)
        self.pools_made = 0
        """Pools made so far: the first, and one after each pool a dead worker broke."""

    def check(self, task: Task[Any, Any]) -> None:
        """:class:`~cascade.runtime.ExecutorError` if ``task``'s function cannot be sent to a
        worker process: one that pickle cannot name (a lambda, a function defined in another),
        or one of an interactive ``__main__`` (which no worker can import)."""
        fn = task.fn
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        try:
            pickle.dumps(sendable_function(fn), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ExecutorError(
                f"task {task.name!r} cannot run in a worker process: its function {where} cannot "
                f"be pickled ({describe(exc)}); define it at the top level of a module"
            ) from exc
        main = sys.modules.get("__main__")
        if getattr(fn, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
            raise ExecutorError(
                f"task {task.name!r} cannot run in a worker process: its function {where} is "
                "defined in an interactive session (or python -c), which a worker cannot "
                "import; define it in a module or a script"
            )

    def start_run(self, max_concurrency: int) -> RunProcesses:
        """A run's attempts in this executor's pool."""
        return RunProcesses(self)

    def submit(
        self,
        payload: bytes,
        context: Any,
        lines: Lines | None,
        taken: Attempt | None = None,
    ) -> tuple[Future[Outcome], ProcessPoolExecutor, bool]:
        """One attempt in the pool (made, or made again after a worker died, as needed), the
        pool, and whether it waits for a worker (they are all busy): then ``taken``'s
        ``began_at``, where given, is set (in the pool's thread) when one starts it."""
        with self._lock:
            pool = self._pool
            pooled: Future[Outcome] | None = None
            if pool is not None:
                try:
                    pooled = pool.submit(run_attempt, payload, context, lines)
                except BrokenProcessPool:
                    pass  # a worker died since: the next attempts go to a new pool
                except RuntimeError:
                    pass  # shut down (by shutdown()): started again for a new run's attempt
            if pool is None or pooled is None:
                pool = self._pool = ProcessPoolExecutor(self.max_workers, mp_context=self._context)
                self._slots = _Slots(self.max_workers)
                self.pools_made += 1
                pooled = pool.submit(run_attempt, payload, context, lines)
            slots = self._slots
            waits = slots.take(pooled, taken)
        pooled.add_done_callback(slots.ended)
        return pooled, pool, waits

    def lost(self, pool: ProcessPoolExecutor) -> WorkerLost:
        """The :class:`WorkerLost` of an attempt ``pool`` failed when a worker died (the pool
        is made again at the next attempt). In the pool's thread, for each attempt it held:
        which worker died is looked for once a pool, for at most half a second."""
        said = self._said_lost
        if said is None or said[0] is not pool:
            said = self._said_lost = (pool, _which_died(pool))
        return WorkerLost(
            f"worker lost ({said[1]}): the process pool failed every attempt it held then; "
            "this attempt counts as failed"
        )

    def shutdown(self, wait: bool = True) -> None:
        """End the pool's workers (after their attempts, with ``wait``); a later attempt makes
        a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_workers={self.max_workers})"


class _Slots:
    """Which attempts of one pool run and which wait for a worker, told from the pool's own
    order: a pool hands its attempts to its workers in the order they came, so when one
    ends (its worker is free), the longest waiting starts. No message from the worker: the
    cheapest signal there is, a little late (by the time the ended attempt's result takes to
    come back)."""

    __slots__ = ("busy", "lock", "waiting", "workers")

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.busy = 0  # attempts in the pool that have not ended
        self.waiting: deque[tuple[Future[Outcome], Attempt | None]] = deque()
        self.lock = threading.Lock()

    def take(self, pooled: Future[Outcome], taken: Attempt | None) -> bool:
        """``pooled`` (``taken``) is in the pool: whether it waits for a worker."""
        with self.lock:
            self.busy += 1
            if self.busy <= self.workers:
                return False
            self.waiting.append((pooled, taken))
            return True

    def ended(self, pooled: Future[Outcome]) -> None:
        """``pooled`` ended (in the pool's thread): the longest waiting attempt starts, unless
        it was cancelled while it waited (no worker was freed) or the pool broke (none will)."""
        with self.lock:
            self.busy -= 1
            waiting = self.waiting
            if pooled.cancelled():
                for entry in waiting:
                    if entry[0] is pooled:
                        waiting.remove(entry)
                        break
                return
            if isinstance(pooled.exception(), BrokenProcessPool):
                waiting.clear()
                return
            while waiting:
                next_one, taken = waiting.popleft()
                if not next_one.done():
                    if taken is not None:
                        taken.began_at = time.perf_counter()
                    break


def _which_died(pool: ProcessPoolExecutor) -> str:
    """The workers of a broken ``pool`` that have exited, and how (a killed process is seen
    dead by the pool a moment before its exit code is known: waited for, briefly)."""
    processes = getattr(pool, "_processes", None) or {}  # read only, guarded
    deadline = time.monotonic() + 0.5
    while True:
        dead = [
            f"pid {pid} {_exit(code)}"
            for pid, process in list(processes.items())
            if (code := getattr(process, "exitcode", None))
        ]
        if dead or time.monotonic() > deadline:
            return ", ".join(dead) or "a worker process died"
        time.sleep(0.01)


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with {code}"


class RunProcesses:
    """A run's attempts in a :class:`ProcessExecutor`'s pool."""

    abandoned = "its worker process runs it on to its end; the result is discarded"

    def __init__(self, executor: ProcessExecutor) -> None:
        self.executor = executor
        self._loop = asyncio.get_running_loop()
        self._attempts: dict[str, Future[Outcome]] = {}  # in the pool, by task id

    def take(self, attempt: Attempt) -> asyncio.Future[Any]:
        """``attempt`` in a worker, as :meth:`submit` runs a call; if the workers are all busy,
        it waits (``attempt.waiting``) and ``attempt.began_at`` is set when one starts it.
        Nothing of it is kept where it runs."""
        grant = attempt.grant
        ended = None if grant is None else grant.release
        return self._submit(attempt.fn, attempt.args, attempt.kwargs, ended, attempt)

    def submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: AttemptSpan | None,
        ended: Callable[[], None] | None = None,
        amounts: Mapping[str, float] | None = None,
    ) -> asyncio.Future[Any]:
        """``fn(*args, **kwargs)`` in a worker (``span`` stays here: the attempt's span covers
        its time in the pool); ``ended`` called when the pool is done with it; ``amounts`` are
        the machine's, held by the engine."""
        return self._submit(fn, args, kwargs, ended, None)

    def _submit(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ended: Callable[[], None] | None,
        taken: Attempt | None,
    ) -> asyncio.Future[Any]:
        attempt = RemoteAttempt(fn, args, kwargs, "a worker process")
        pooled, pool, waits = self.executor.submit(
            attempt.payload, attempt.context, attempt.lines, taken
        )
        if waits and taken is not None:
            taken.waiting = self.executor.queued
        future: asyncio.Future[Any] = self._loop.create_future()
        self._attempts[attempt.task_id] = pooled
        future.add_done_callback(lambda done: done.cancelled() and pooled.cancel())
        pooled.add_done_callback(lambda _: self._settled(attempt, pooled, pool, future))
        if ended is not None:
            pooled.add_done_callback(lambda _: ended())
        return future

    def _settled(
        self,
        attempt: RemoteAttempt,
        pooled: Future[Outcome],
        pool: ProcessPoolExecutor,
        future: asyncio.Future[Any],
    ) -> None:
        """The attempt ended in the pool (in the pool's thread; on the loop when it was
        cancelled there): its lines to the run's logs, its result or failure to ``future``."""
        task_id = attempt.task_id
        if pooled.cancelled():
            self._forget(task_id, pooled)
            return
        failure = pooled.exception()
        value: Any = None
        if failure is not None:
            if isinstance(failure, BrokenProcessPool):
                failure = self.executor.lost(pool)
        else:
            value, failure = attempt.settle(pooled.result())
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, task_id, pooled, future, value, failure)

    def _settle(
        self,
        task_id: str,
        pooled: Future[Outcome],
        future: asyncio.Future[Any],
        value: Any,
        failure: BaseException | None,
    ) -> None:
        """On the loop: the attempt's end to whoever awaits it (nobody, if it was cancelled:
        a timeout, or the run stopped)."""
        self._forget(task_id, pooled)
        if future.done():
            return
        if failure is not None:
            future.set_exception(failure)
        else:
            future.set_result(value)

    def _forget(self, task_id: str, pooled: Future[Outcome]) -> None:
        if self._attempts.get(task_id) is pooled:
            del self._attempts[task_id]

    def started(self, task_id: str) -> bool:
        """Whether the attempt of ``task_id`` in the pool has been handed to a worker (one
        that has not is cancelled with its run)."""
        pooled = self._attempts.get(task_id)
        return pooled is not None and pooled.running()

    def close(self, *, wait: bool) -> None:
        """Cancel the run's attempts still queued (the pool is the executor's: it stays)."""
        for pooled in list(self._attempts.values()):
            pooled.cancel()
