"""The scheduler of one run: ready tasks, constraints, concurrency, retries, failures."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cascade.interfaces import Decided, DecisionReply, DecisionRequest, TaskRef

from ._cancel_report import CancelReport
from ._constraints import ConstraintManager
from ._errors import RunCancelledError, TaskFailedError
from ._events import (
    Event,
    TaskBlocked,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskRetrying,
    TaskRunning,
    TaskSkipped,
)
from ._graph import Graph, Node, resolve
from ._held import HeldTasks, HoldCounts, HoldPolicy
from ._logs import RunLogs
from ._ready import Group, Retry
from ._run_results import RunResults
from ._steps import describe
from ._task_context import CURRENT, RunContext
from ._tracing import AttemptSpan, AttemptState, RunTrace

__all__ = ["CancelReport", "Run"]

_log = logging.getLogger("cascade.runtime.engine")


class Run:
    """The scheduler of one run."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        max_concurrency: int,
        graph: Graph,
        manager: ConstraintManager,
        wake: asyncio.Event,
        run_id: str,
        tracing: RunTrace | None = None,
        hold: HoldPolicy = HoldPolicy(),  # noqa: B008 - frozen, shared safely
        stats: HoldCounts | None = None,
        source: str = "",
    ) -> None:
        self.graph = graph
        self.tracing = tracing  # None: not traced, no tracing work per task
        self.manager = manager
        self.wake = wake
        self.run_id = run_id
        self.emit = emit
        self.max_concurrency = max_concurrency
        self.groups: dict[str, Group] = {}
        self.active: dict[asyncio.Task[None], Node | Retry] = {}  # its attempt, by task
        self.cancelled: RunCancelledError | None = None
        self.running = 0
        self.finished = 0
        self.failures: list[tuple[Node, BaseException]] = []
        self.executor: ThreadPoolExecutor | None = None
        self.stopping = False  # set before the run cancels its tasks
        self.stopped_by = ""  # what stopped the run, as its stopped tasks' error says
        self.loop = asyncio.get_running_loop()
        self.logs: RunLogs | None = None  # the run's log forwarding, if it forwards
        self.held = HeldTasks(self, hold, stats, source)
        self.results: RunResults | None = None  # where its results are kept, if they are
        self.context = RunContext(run_id, run_id, graph, None)  # what current_task() tells

    async def execute(self) -> None:
        """Run every node; raise :class:`TaskFailedError` at the end if one failed."""
        if self.results is not None and self.results.reused:
            self._reuse(self.results.reused)
        for node in self.graph.nodes:
            if node.waiting == 0 and not node.done:
                self.ready(node)
        total = len(self.graph.nodes)
        timer: asyncio.TimerHandle | None = None
        stop: BaseException | None = None
        try:
            while True:
                if self.cancelled is not None:
                    raise self.cancelled
                wait = self._dispatch()
                if self.finished >= total:
                    break
                if timer is not None:
                    timer.cancel()
                    timer = None
                if wait != math.inf:
                    timer = self.loop.call_later(wait, self.wake.set)
                await self.wake.wait()
                self.wake.clear()
            if self.cancelled is not None:  # in the same turn as its last task's end
                raise self.cancelled
        except BaseException as stopped:
            stop = stopped
            raise
        finally:
            if timer is not None:
                timer.cancel()
            await self._stop_tasks(stop)
            self.held.close()
            if self.executor is not None:
                self.executor.shutdown(wait=stop is None, cancel_futures=True)
        if self.failures:
            node, exc = self.failures[0]
            raise TaskFailedError(
                node.lazy.name,
                node.lazy.task_id,
                exc,
                [n.lazy.task_id for n, _ in self.failures],
                self.run_id,
            ) from exc

    def _reuse(self, reused: dict[int, tuple[Any, str]]) -> None:
        """The nodes a rerun reuses end ``COMPLETED`` at once with their stored values (they
        never run: their dependents get the values, and no longer wait for them)."""
        for node in self.graph.nodes:
            found = reused.get(id(node))
            if found is None:
                continue
            node.result, from_run = found
            node.done = True
            self.finished += 1
            for dependent in node.dependents:
                dependent.waiting -= 1
            lazy = node.lazy
            self.emit(
                TaskCompleted(
                    run_id=self.run_id,
                    task_id=lazy.task_id,
                    task_name=lazy.name,
                    reused_from=from_run,
                )
            )

    async def _stop_tasks(self, stop: BaseException | None) -> None:
        """Cancel the attempts still going; if ``stop`` ended the run early, give every task
        that has not ended its terminal state (:class:`TaskCancelled`)."""
        self.stopping = True
        if stop is not None:
            self.stopped_by = (
                "CancelledError: the run was cancelled"
                if isinstance(stop, asyncio.CancelledError)
                else describe(stop)
            )
        if self.active:
            tasks = list(self.active)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if stop is not None:
            for node in self.graph.nodes:
                if not node.done and not self.held.stop(node, self.stopped_by):
                    self._cancelled(node, None)

    def _cancelled(self, node: Node, started: float | None, thread: bool = False) -> None:
        """``node``'s task was stopped with the run (``started``: its first attempt's start)."""
        node.done = True
        lazy = node.lazy
        error = self.stopped_by
        if thread:
            error += " (its thread runs on to its end; the result is discarded)"
        duration = 0.0 if started is None else (time.perf_counter() - started) * 1000
        self.emit(
            TaskCancelled(
                run_id=self.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=duration,
                error=error,
            )
        )

    def cancel(self, issued_by: str | None = None, reason: str | None = None) -> CancelReport:
        """Stop the run: nothing new starts, and :meth:`execute` raises
        :class:`RunCancelledError` at once, cancelling the coroutine tasks running (a
        plain-function task in a thread runs on to its end, its result discarded).

        Returns what was running and what will not start, as it is now.
        """
        cancelled: list[TaskRef] = []
        abandoned: list[TaskRef] = []
        for item in self.active.values():
            lazy = item.lazy
            ref = TaskRef(task_id=lazy.task_id, task_name=lazy.name)
            (cancelled if lazy.task.is_async else abandoned).append(ref)
        not_started = max(0, len(self.graph.nodes) - self.finished - len(self.active))
        already = self.cancelled is not None
        if not already:
            self.cancelled = RunCancelledError(self.run_id, issued_by, reason)
            self.wake.set()
        return CancelReport(self.run_id, cancelled, abandoned, not_started, already)

    def decide(self, request: DecisionRequest) -> DecisionReply:
        """Apply a decision on a held task of this run, and answer it (see :class:`HeldTasks`)."""
        return self.held.decide(request)

    def ready(self, node: Node | Retry) -> None:
        """``node`` may start: queue it behind the ready tasks of its name (a retry ahead)."""
        name = node.lazy.name
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group()
        if isinstance(node, Retry):
            # Started work first: ahead of the tasks not yet started, behind those already BLOCKED.
            group.nodes.insert(group.marked, node)
        else:
            group.nodes.append(node)

    def _dispatch(self) -> float:
        """Start every ready task or retry the limits allow; return seconds until a token is due."""
        earliest = math.inf
        admit = self.manager.admit
        for name, group in list(self.groups.items()):
            nodes = group.nodes
            while nodes:
                if self.running >= self.max_concurrency:
                    return earliest
                wait = admit(name)
                if wait is not None:
                    # BLOCKED goes to the tasks this pass would have started: one per free slot.
                    upto = min(len(nodes), self.max_concurrency - self.running)
                    if group.marked < upto:
                        held = tuple(self.manager.holds(name))  # asked only when one blocks
                        for node in itertools.islice(nodes, group.marked, upto):
                            self.emit(
                                TaskBlocked(
                                    run_id=self.run_id,
                                    task_id=node.lazy.task_id,
                                    task_name=name,
                                    attempt=node.attempt if isinstance(node, Retry) else 1,
                                    held_by=held,
                                )
                            )
                        group.marked = upto
                    earliest = min(earliest, wait)
                    break
                node = nodes.popleft()
                if group.marked:
                    group.marked -= 1
                self.running += 1
                task = self.loop.create_task(self._execute(node))
                self.active[task] = node
                task.add_done_callback(self.active.pop)
            if not nodes:
                del self.groups[name]
        return earliest

    async def _execute(self, item: Node | Retry) -> None:
        """Run one attempt of a task admitted by :meth:`_dispatch`.

        A failed attempt with attempts left gives its admission back and, after
        the retry delay, goes back to the ready groups as a :class:`Retry`:
        every attempt is admitted by the constraints and ``max_concurrency``.
        """
        node = item.node if isinstance(item, Retry) else item
        lazy = node.lazy
        spec = lazy.task
        policy = spec.retry
        emit = self.emit
        run_id, task_id, name = self.run_id, lazy.task_id, lazy.name
        retry: Retry | None = None
        span: AttemptSpan | None = None
        outcome: AttemptState = "FAILED"
        error: BaseException | None = None
        try:
            if isinstance(item, Retry):
                attempt, started, args, kwargs = item.attempt, item.started, item.args, item.kwargs
                decided = item.decided
            else:
                attempt, started, decided = 1, time.perf_counter(), None
                if node.deps:
                    args = resolve(lazy.args, self.graph)
                    kwargs = resolve(lazy.kwargs, self.graph)
                else:
                    args, kwargs = lazy.args, lazy.kwargs
            if self.tracing is not None:
                span = self.tracing.attempt(run_id, task_id, name, attempt)
            if decided is not None:
                emit(
                    TaskRunning(
                        run_id=run_id,
                        task_id=task_id,
                        task_name=name,
                        attempt=attempt,
                        decided=decided,
                    )
                )
            else:
                emit(TaskRunning(run_id=run_id, task_id=task_id, task_name=name, attempt=attempt))
            CURRENT.set((self.context, node, attempt))  # in its task, and its thread's context
            logs = self.logs
            if logs is not None:  # what this attempt logs, in its task and its thread, is its
                logs.enter(task_id, name, attempt, span.span_id if span is not None else None)
            attempt_started = time.perf_counter()
            try:
                if spec.is_async:
                    if span is None:
                        result = await spec.fn(*args, **kwargs)
                    else:
                        result = await span.run_async(spec.fn, args, kwargs)
                else:
                    call: Callable[[], Any] = functools.partial(spec.fn, *args, **kwargs)
                    if span is not None:
                        call = span.bind(call)
                    # in a copy of this task's context: its current_task(), its log scope
                    result = await self.loop.run_in_executor(
                        self._executor(), functools.partial(contextvars.copy_context().run, call)
                    )
            except asyncio.CancelledError as exc:
                if self.stopping:
                    outcome, error = "CANCELLED", exc
                    self._cancelled(node, started, thread=not spec.is_async)
                    raise
                failure: BaseException = exc  # raised by the task's own code: a failure
            except Exception as exc:
                failure = exc
            else:
                outcome = "COMPLETED"
                node.result = result
                results = self.results
                emit(
                    TaskCompleted(
                        run_id=run_id,
                        task_id=task_id,
                        task_name=name,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        attempt=attempt,
                        not_kept=None if results is None else results.keep(node, result),
                    )
                )
                self.completed(node)
                return
            now = time.perf_counter()
            error = failure
            if attempt < policy.max_attempts and decided is None:
                outcome = "RETRYING"
                emit(
                    TaskRetrying(
                        run_id=run_id,
                        task_id=task_id,
                        task_name=name,
                        duration_ms=(now - attempt_started) * 1000,
                        error=describe(failure),
                        attempt=attempt,
                        exception=failure,
                    )
                )
                retry = Retry(node, attempt + 1, started, args, kwargs)
            elif self.held.holds(spec):
                self.held.hold(node, attempt, failure, started, args, kwargs)
            else:
                emit(
                    TaskFailed(
                        run_id=run_id,
                        task_id=task_id,
                        task_name=name,
                        duration_ms=(now - started) * 1000,
                        error=describe(failure),
                        attempt=attempt,
                        exception=failure,
                    )
                )
                self.failed(node, failure)
        except Exception as exc:  # a bug of ours must fail the task, not hang the run
            _log.error("task %s (%s) broke the engine", name, task_id, exc_info=exc)
            outcome, error = "FAILED", exc
            self.failed(node, exc)
        finally:
            if span is not None:
                span.end(outcome, error)
            self.running -= 1
            self.manager.finished(name)
            self.wake.set()
        if retry is not None:
            delay = policy.delay_before(retry.attempt)
            if delay:
                await asyncio.sleep(delay)
            self.ready(retry)
            self.wake.set()

    def _executor(self) -> ThreadPoolExecutor:
        """The run's thread pool for sync tasks, made on first use."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                max_workers=min(self.max_concurrency, 32), thread_name_prefix="cascade-task"
            )
        return self.executor

    def requeue(
        self,
        node: Node,
        attempt: int,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        decided: Decided,
    ) -> None:
        """A retry decided on a held task: its next ``attempt``, admitted like any."""
        self.ready(Retry(node, attempt, started, args, kwargs, decided))

    def completed(self, node: Node) -> None:
        """``node`` has its result: its dependents waiting on nothing else may start."""
        node.done = True
        self.finished += 1
        for dependent in node.dependents:
            dependent.waiting -= 1
            if dependent.waiting == 0 and not dependent.skipped and not dependent.done:
                self.ready(dependent)

    def failed(self, node: Node, exc: BaseException) -> None:
        """``node`` failed: the run will fail, its dependents are skipped."""
        node.done = True
        self.finished += 1
        self.failures.append((node, exc))
        self._skip_dependents(node, "failed")

    def skipped(self, node: Node) -> None:
        """A decision skipped held ``node``: its dependents are skipped, the run goes on."""
        node.done = node.skipped = True
        self.finished += 1
        self._skip_dependents(node, "was skipped")

    def _skip_dependents(self, node: Node, what: str) -> None:
        reason = f"upstream task {node.lazy.name!r} ({node.lazy.task_id}) {what}"
        stack = list(node.dependents)
        while stack:
            dependent = stack.pop()
            if dependent.skipped or dependent.done:  # done: a rerun reused it
                continue
            dependent.skipped = dependent.done = True
            self.finished += 1
            lazy = dependent.lazy
            self.emit(
                TaskSkipped(
                    run_id=self.run_id, task_id=lazy.task_id, task_name=lazy.name, error=reason
                )
            )
            stack.extend(dependent.dependents)
