"""One run of a graph: ready tasks admitted by the constraints, ``max_concurrency`` and the
engine's system resources; each attempt as its steps (its call resolved, or ended before it
ran; started and awaited; where what it returned or raised takes it); what a cancel stopped.

:class:`Run` owns all of it. Every change of a task's state, and the task's event with it, is
a transition of :class:`~._task_states.TaskStates`, which a run is; its held tasks
(:class:`~._held_tasks.HeldTasks`), loops and maps move their tasks on through them too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from cascade.interfaces import Hold
from cascade.interfaces.commands import Decided, DecisionReply, DecisionRequest
from cascade.interfaces.wire import TaskRef

from ._errors import FailedInLostRun, RunCancelledError, TaskFailedError, ValueLost
from ._events import (
    Event,
    ResourceAcquired,
    ResourceReleased,
)
from ._held_tasks import HeldTasks, HoldCounts, HoldDefaults
from ._loops import Loops, first_jump
from ._maps import Maps
from ._run_resources import ResourceCounts, RunResources
from ._steps import describe
from ._task_states import TaskStates, since
from ._tracing import AttemptSpan, AttemptState, RunTrace
from ._worker_starts import WorkerStarts
from .constraints._capacity import Capacity, Grant, Ticket
from .constraints._constraints import ConstraintManager
from .executors._executor import Attempt, RunView
from .executors._placement import Placement
from .logs._logs import RunLogs
from .results._cache import RunCache
from .results._memory import Remembered
from .results._rerun import Step
from .results._run_results import RunResults
from .workflow._amounts import Amounts
from .workflow._cache_policy import Cache
from .workflow._graph import Node
from .workflow._jump import Jump
from .workflow._resource import Resource, ResourceFailed
from .workflow._router import NOT_ROUTED
from .workflow._routing import Demand
from .workflow._run_state import RunState, resolve
from .workflow._task_context import CURRENT, RunContext

__all__ = ["CancelReport", "HoldDefaults", "Run", "RunCounts"]

_log = logging.getLogger("cascade.runtime.engine")


async def _within(attempt: Awaitable[Any], seconds: float) -> Any:
    """``attempt``'s result, or ``TimeoutError`` saying so once it took ``seconds``: it is
    cancelled then (a thread's work runs on, its result discarded)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        return await asyncio.wait_for(attempt, seconds)
    except asyncio.TimeoutError:
        if loop.time() - started < seconds:  # the task's own TimeoutError, raised in time
            raise
        raise TimeoutError(f"the attempt took more than {seconds:g} s (its timeout)") from None


@dataclass(frozen=True)
class CancelReport:
    """What :meth:`Engine.cancel <cascade.runtime.Engine.cancel>` cancelled of a run.

    ``cancelled``: its coroutine tasks that were running, now cancelled. ``abandoned``:
    its plain-function tasks running in threads or worker processes, which cannot be
    stopped: they run to their end and their results are discarded. ``not_started``: how
    many of its tasks will not start (those an executor held queued among them).
    ``already``: an earlier cancel had cancelled it (the lists are then what was still
    running).
    """

    run_id: str
    cancelled: list[TaskRef] = field(default_factory=list)
    abandoned: list[TaskRef] = field(default_factory=list)
    not_started: int = 0
    already: bool = False


class TaskAttempt:
    """One attempt of a task as its run drives it (:meth:`Run._execute`): which one, since
    when, its call as written (a retry or a hold keeps its injects, not their values), and
    what became of it. A retry is the next one, ready once its delay is over: it is admitted
    and starts like a first attempt (``decided``: a retry decided on a held task, one attempt,
    then held again)."""

    __slots__ = (
        "args",
        "attempt",
        "attempt_started",
        "decided",
        "error",
        "handed",
        "injected",
        "kwargs",
        "lazy",
        "node",
        "outcome",
        "retry",
        "span",
        "started",
        "threaded",
    )

    features = ()  # its call's were asked before its first attempt

    def __init__(
        self,
        node: Node,
        attempt: int,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        decided: Decided | None = None,
    ) -> None:
        self.node = node
        self.lazy = node.lazy
        self.attempt = attempt
        self.started = started  # of the task's first attempt, for duration_ms
        self.attempt_started = started  # of this one, once it starts
        self.args = args
        self.kwargs = kwargs
        self.decided = decided
        self.handed: Attempt | None = None  # a plain function's, as its executor took it
        self.span: AttemptSpan | None = None
        self.injected = False  # its resources' values were had (it may have started)
        self.threaded = False  # its grant went with it to its executor, which gives it back
        self.outcome: AttemptState = "FAILED"
        self.error: BaseException | None = None
        self.retry: TaskAttempt | None = None  # the next attempt, where one follows

    def waited(self, starts: WorkerStarts) -> None:
        """It ended (or was given up on): if it waited for a worker, its times count from when
        one started it, if one did (its RUNNING said now if it was not yet)."""
        handed = self.handed
        if handed is None or handed.waiting is None:
            return
        began = starts.ended(handed)
        if began is not None:
            if self.attempt == 1:
                self.started = began
            self.attempt_started = began


class Group:
    """Ready nodes of one task name: constraints only look at the name, so one check serves all.

    Nodes that ask for system resources are grouped by name and by their request as written
    (``needs``: equal numbers, the same lazy results and parameters), so they all ask the same
    amounts (``asked``, once known), and one check of the capacity serves them all too.
    """

    __slots__ = ("asked", "marked", "name", "needs", "nodes", "ticket")

    def __init__(self, name: str, needs: Amounts | None = None) -> None:
        self.name = name
        self.needs = needs
        self.nodes: deque[Node | TaskAttempt] = deque()
        self.marked = 0  # how many nodes at the front have had their BLOCKED event
        self.asked: dict[str, float] | None = None  # needs resolved and checked
        self.ticket: Ticket | None = None  # its first node's place in line for resources


_NO_HOLD_OPTIONS = HoldDefaults()  # the engine's defaults


class RunCounts(HoldCounts, ResourceCounts, Protocol):
    """Where a run counts what it does (:class:`~cascade.runtime.EngineStats`)."""


class Run(TaskStates):
    """One run of a graph, whose state is ``state`` (a run's own: the graph holds none):
    :meth:`execute` runs it; :meth:`cancel` and :meth:`decide` steer it.

    Given at construction, never set afterwards: where its events go (``emit``), the
    constraints that admit its tasks (``manager``, whose changes wake it), its tracing, hold
    defaults and counters, where its results are kept (``results``), where its tasks' log lines
    go (``logs``), the first run of its line (``root_run``, for a rerun), the resources its
    tasks may inject, by name (``resources``: set up on first use, torn down at its end), the
    engine's system resources (``capacity``, shared by its runs), where its cached tasks look
    (``cache``, where it has some), and where its plain-function tasks run (``executors``: the
    engine's; threads by default).
    """

    def __init__(
        self,
        state: RunState,
        run_id: str,
        *,
        emit: Callable[[Event], None],
        emit_aside: Callable[[ResourceAcquired | ResourceReleased], None] | None = None,
        manager: ConstraintManager,
        max_concurrency: int,
        tracing: RunTrace | None = None,
        hold: HoldDefaults = _NO_HOLD_OPTIONS,
        stats: RunCounts | None = None,
        source: str = "",
        results: RunResults | None = None,
        logs: RunLogs | None = None,
        root_run: str | None = None,
        resources: Mapping[str, Resource] | None = None,
        capacity: Capacity | None = None,
        cache: RunCache | None = None,
        executors: Placement | None = None,
    ) -> None:
        self.state = state
        self.graph = graph = state.graph
        self.run_id = run_id
        self.emit = emit
        self.manager = manager
        self.wake = asyncio.Event()
        manager.on_change(self.wake.set)
        self.max_concurrency = max_concurrency
        self.tracing = tracing  # None: not traced, no tracing work per task
        self.results = results  # where its results are kept, if they are
        # a carry-on's: what the run it carries on noted of its tasks (falsy once all taken)
        self.memory = results.memory if results is not None else None
        self.logs = logs  # the run's log forwarding, if it forwards
        # what current_task() tells
        keys = results.keys if results is not None else None
        self.context = RunContext(run_id, root_run or run_id, graph, keys)
        self.held = HeldTasks(self, hold, stats, source)
        # by task name; by (name, request as written) for the tasks that ask for resources
        self.groups: dict[Any, Group] = {}
        self.active: dict[asyncio.Task[None], Node | TaskAttempt] = {}  # its attempt, by task
        self.cancel_error: RunCancelledError | None = None
        self.running = 0
        self.finished = 0
        self.failures: list[tuple[Node, BaseException]] = []
        # where its plain-function tasks run: the default executor's part, the named ones'
        self.executors = (executors or Placement(None, None)).start_run(max_concurrency)
        self.executor = self.executors.default  # a task that names none: one attribute read
        self.view = RunView(results, graph.roots, self.executors.of)  # what executors see
        self.stopping = False  # set before the run cancels its tasks
        self.stopped_by = ""  # what stopped the run, as its stopped tasks' error says
        self.threads_left = False  # a thread past its timeout runs on, its result discarded
        self.total = len(graph.nodes)  # grows as maps make their items
        self.maps = Maps(self)  # its maps whose items run
        self.loads: set[asyncio.Task[None]] = set()  # reading the kept results of maps' items
        self.loop = asyncio.get_running_loop()
        self.starts = WorkerStarts(self, self.loop)  # of attempts that waited
        # None: no task injects one (graph.resources checked against them before the run)
        self.resources = (
            RunResources(resources or {}, run_id, self.executors.threads.pool, stats, emit_aside)
            if graph.resources
            else None
        )
        self.capacity = capacity if capacity is not None else Capacity()
        self.asking: dict[str, Group] = {}  # tasks BLOCKED that ask for resources, by id
        self.cache = cache  # its cached tasks' lookups (with_cache), where it has some
        # which of its routed tasks run, decided as its selectors end (None: it has no router)
        self.demand = (
            None
            if graph.routing is None
            else Demand(graph.routing, state, self._wanted, self._not_routed, self._needless)
        )
        # (consumer, task) pairs: a task that takes a router no longer waits for that task
        self.let_go: set[tuple[int, int]] = set()
        self.parked: dict[int, Node] = {}  # routed tasks ready but for being wanted
        # a rerun's kept results of routed tasks: reused once wanted
        self.reusable: dict[int, tuple[Any, str]] = {}
        # with routers: why what needs a task that ended without a result is skipped
        self.skip_reasons: dict[int, str] = {}
        self.loops: Loops | None = None  # its loops (cs.bind), once a task has jumped

    async def execute(self) -> None:
        """Run every node; raise :class:`TaskFailedError` at the end if one failed."""
        if self.results is not None and self.results.reused:
            self._reuse(self.results.reused)
        if self.results is not None and self.results.needless:
            self._skip_needless(self.results.needless)
        # found before any is readied: readying one may release another (a map of no items
        # completes at once), which must not be readied twice, or end another (not routed)
        state = self.state  # no item made yet: a graph's node i is at index i, zipped
        nodes = zip(self.graph.nodes, state.waiting, state.done, strict=True)
        for node in [n for n, waits, done in nodes if waits == 0 and not done]:
            if not state.done[node.index]:
                self.ready(node)
        if self.demand is not None:  # after: a routed task decided now starts once, from here
            self.demand.start()
        timer: asyncio.TimerHandle | None = None
        stop: BaseException | None = None
        unlisten = self.capacity.listen(self.wake.set)  # another run's task may free some
        try:
            while True:
                if self.cancel_error is not None:
                    raise self.cancel_error
                wait = self._dispatch()
                if self.finished >= self.total:
                    break
                if timer is not None:
                    timer.cancel()
                    timer = None
                if wait != math.inf:
                    timer = self.loop.call_later(wait, self.wake.set)
                await self.wake.wait()
                self.wake.clear()
            if self.cancel_error is not None:  # in the same turn as its last task's end
                raise self.cancel_error
        except BaseException as stopped:
            stop = stopped
            raise
        finally:
            if timer is not None:
                timer.cancel()
            await self._stop_tasks(stop)
            unlisten()
            self._leave_line()
            self.held.close()
            if self.resources is not None:
                await self.resources.close()
            self.executors.close(wait=stop is None and not self.threads_left)
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
        state = self.state
        for node in self.graph.nodes:
            found = reused.get(id(node))
            if found is None:
                continue
            if state.wanted[node.index] is None:  # reused only where its routes are chosen
                self.reusable[id(node)] = found
                continue
            if self._loop_reuses(node, *found):
                continue
            self.reused_at_start(node, *found)

    def _skip_needless(self, needless: dict[int, str]) -> None:
        """The nodes a rerun need not run (no task it runs needs them) end ``SKIPPED`` at once,
        saying why; what waits on them no longer does (it is reused, or not needed too)."""
        for node in self.graph.nodes:
            why = needless.get(id(node))
            if why is not None:
                self.needless_at_start(node, why)

    def _loop_reuses(self, node: Node, value: Any, from_run: str) -> bool:
        """Whether ``value``, a rerun's kept result of ``node`` (by ``from_run``), is a loop's
        first jump: the loop goes on from it once ready (its feature asks :meth:`Loops.ready`)."""
        jump = first_jump(node, value)
        if jump is None:
            return False
        if self.loops is None:
            self.loops = Loops(self)
        self.loops.reused(node, jump, from_run)
        return True

    def _wanted(self, node: Node) -> None:
        """Routed ``node`` is needed: it starts once ready (a rerun's kept result: at once)."""
        found = self.reusable.pop(id(node), None)
        if found is not None and self._loop_reuses(node, *found):
            found = None
        if found is not None:
            self.parked.pop(id(node), None)
            value, from_run = found
            self.completed(node, value, reused_from=from_run)
        elif self.parked.pop(id(node), None) is not None:
            self.ready(node)
        self.wake.set()

    def _not_routed(self, node: Node) -> None:
        """No task the run needs takes routed ``node``: it ends ``not routed``, what waits on
        it goes on."""
        self.parked.pop(id(node), None)
        self.reusable.pop(id(node), None)
        if not self.state.done[node.index]:
            self.end_skipped(node, NOT_ROUTED)
            self._release(node)
        self.wake.set()

    def _needless(self, consumer: Node, dep: Node) -> None:
        """``consumer`` takes ``dep`` only through routes its routers did not choose: it no
        longer waits for it (another router may choose it, or it ends as it will)."""
        if (id(consumer), id(dep)) in self.let_go:
            return
        self.let_go.add((id(consumer), id(dep)))
        state, at = self.state, consumer.index
        state.waiting[at] -= 1
        if state.waiting[at] == 0 and not state.skipped[at] and not state.done[at]:
            self.ready(consumer)
        self.wake.set()

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
        if self.active or self.loads:
            tasks = [*self.active, *self.loads]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.active.clear()
        if stop is not None:
            done = self.state.done
            going = self.loops.going() if self.loops is not None else ()
            for node in itertools.chain(going, self.state.items, self.graph.nodes):
                if not done[node.index] and not self.held.stop(node, self.stopped_by):
                    self.cancelled(node, self.maps.started(node))

    def cancel(self, issued_by: str | None = None, reason: str | None = None) -> CancelReport:
        """Stop the run: nothing new starts, and :meth:`execute` raises
        :class:`RunCancelledError` at once, cancelling the coroutine tasks running (a
        plain-function task in a thread runs on to its end, its result discarded).

        Returns what was running and what will not start, as it is now.
        """
        cancelled: list[TaskRef] = []
        abandoned: list[TaskRef] = []
        queued = 0  # attempts an executor holds and has not started: they never will
        for item in self.active.values():
            lazy = item.lazy
            ref = TaskRef(task_id=lazy.task_id, task_name=lazy.name)
            if lazy.task.is_async:
                cancelled.append(ref)
            elif self.executors.of(lazy.task).started(lazy.task_id):
                abandoned.append(ref)
            else:
                queued += 1
        running = {
            id(it.node if isinstance(it, TaskAttempt) else it) for it in self.active.values()
        }
        done = self.state.done
        not_started = queued + sum(
            1
            for node in itertools.chain(self.graph.nodes, self.state.items)
            if not done[node.index] and id(node) not in running and not self.maps.made(node)
        )
        already = self.cancel_error is not None
        if not already:
            self.cancel_error = RunCancelledError(self.run_id, issued_by, reason)
            self.wake.set()
        return CancelReport(self.run_id, cancelled, abandoned, not_started, already)

    def decide(self, request: DecisionRequest) -> DecisionReply:
        """Apply a decision on a held task of this run, and answer it (see :class:`HeldTasks`)."""
        return self.held.decide(request)

    def ready(self, node: Node | TaskAttempt) -> None:
        """``node`` may start: queue it behind the ready tasks of its name (and of its request
        for resources, if it has one; a retry ahead), unless one of its features stops it
        first (:meth:`_stops`)."""
        lazy = node.lazy
        if node.features and self._stops(cast(Node, node)):
            return
        key: Any = lazy.name if lazy.resources is None else (lazy.name, lazy.resources)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(lazy.name, lazy.resources)
        if isinstance(node, TaskAttempt):
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
            if group.needs is not None:
                wait = self._dispatch_asking(group)
                if not nodes:
                    del self.groups[name]
                if wait is None:
                    return earliest
                earliest = min(earliest, wait)
                continue
            while nodes:
                if self.running >= self.max_concurrency:
                    return earliest
                wait = admit(name)
                if wait is not None:
                    self._blocked(group, self.manager.holds)
                    earliest = min(earliest, wait)
                    break
                node = nodes.popleft()
                if group.marked:
                    group.marked -= 1
                self.running += 1
                self.active[self.loop.create_task(self._execute(node))] = node
            if not nodes:
                del self.groups[name]
        return earliest

    def _blocked(self, group: Group, holds: Callable[[str], list[Hold]]) -> None:
        """BLOCKED, held by what ``holds`` names (asked only when one blocks), goes to the tasks
        of ``group`` this pass would have started: one per free slot, each once."""
        nodes = group.nodes
        upto = min(len(nodes), self.max_concurrency - self.running)
        if group.marked >= upto:
            return
        held = tuple(holds(group.name))
        for node in itertools.islice(nodes, group.marked, upto):
            lazy = node.lazy
            if group.needs is not None:
                self.asking[lazy.task_id] = group
            self.blocked(lazy, node.attempt if isinstance(node, TaskAttempt) else 1, held)
        group.marked = upto

    def _dispatch_asking(self, group: Group) -> float | None:
        """:meth:`_dispatch` for a group whose tasks ask for system resources: each starts once
        its amounts fit (and no task waits for one of them since earlier) and the constraints
        admit it. Resources are looked at first, so a task that waits for them takes no rate
        token; one that does not fit takes a place in line, unless the constraints hold it too.
        Returns ``None`` when ``max_concurrency`` is reached, else the seconds until a token is
        due (``math.inf``: none is)."""
        nodes = group.nodes
        name = group.name
        capacity = self.capacity
        manager = self.manager
        while nodes:
            if self.running >= self.max_concurrency:
                return None
            asked = group.asked
            if asked is None:
                try:
                    asked = group.asked = capacity.asked(resolve(group.needs, self.state))
                except Exception as exc:  # CapacityError, or a bug of ours: the tasks fail
                    self._cannot_have(group, exc)
                    return math.inf
            ticket = group.ticket
            if not capacity.fits(asked, ticket):
                if ticket is None and not manager.holds(name):
                    ticket = group.ticket = capacity.queue(asked, nodes[0].lazy.task_id)

                def holds(name: str, asked: dict[str, float] = asked) -> list[Hold]:
                    return capacity.holds(asked, group.ticket) + manager.holds(name)

                self._blocked(group, holds)
                return math.inf
            wait = manager.admit(name)
            if wait is not None:
                if ticket is not None:  # held by the broker: it keeps nobody waiting
                    capacity.leave(ticket)
                    group.ticket = None
                self._blocked(group, manager.holds)
                return wait
            item = nodes.popleft()
            if group.marked:
                group.marked -= 1
            group.ticket = None
            task_id = item.lazy.task_id
            grant = capacity.take(asked, task_id, ticket)
            self.asking.pop(task_id, None)
            self.running += 1
            self.active[self.loop.create_task(self._execute(item, grant))] = item
        return math.inf

    def _cannot_have(self, group: Group, exc: Exception) -> None:
        """Fail every task of ``group`` at once: the resources they ask for cannot be had."""
        for item in group.nodes:
            node = item.node if isinstance(item, TaskAttempt) else item
            self.asking.pop(node.lazy.task_id, None)
            self.failed(node, exc, attempt=item.attempt if isinstance(item, TaskAttempt) else 1)
        group.nodes.clear()
        group.marked = 0

    def _leave_line(self) -> None:
        """The run has ended: its tasks no longer wait in line for resources."""
        for group in self.groups.values():
            if group.ticket is not None:
                self.capacity.leave(group.ticket)
                group.ticket = None

    def holds(self, task_name: str, task_id: str) -> list[Hold]:
        """What holds the blocked task ``task_id`` back now: the system resources it waits for
        (if it asks for some) and the constraints on its name."""
        held = self.manager.holds(task_name)
        group = self.asking.get(task_id)
        if group is not None and group.asked is not None:
            held = self.capacity.holds(group.asked, group.ticket) + held
        return held

    async def _execute(self, item: Node | TaskAttempt, grant: Grant | None = None) -> None:
        """Run one attempt of a task admitted by :meth:`_dispatch`, holding ``grant`` (the
        system resources it asked for, if any) until it ends.

        A failed attempt with attempts left gives its admission back and, after
        the retry delay, goes back to the ready groups as its next :class:`TaskAttempt`:
        every attempt is admitted by the constraints and ``max_concurrency``. A plain
        function's executor gives ``grant`` back when its body ends where it runs (a thread, a
        worker): one given up on (a timeout, a cancel) still uses what it asked for.
        """
        node = item.node if isinstance(item, TaskAttempt) else item
        lazy = node.lazy
        go: TaskAttempt | None = None
        try:
            if isinstance(item, TaskAttempt):  # a retry
                go = item
            else:
                go = self._first_attempt(node)
                if (
                    go is not None
                    and lazy.task.cache is not None
                    and await self._from_cache(node, go.args, go.kwargs, go.started)
                ):
                    go = None  # its cache gave its result
            if go is not None:
                await self._attempt(go, grant)
        except Exception as exc:  # a bug of ours must fail the task, not hang the run
            _log.error("task %s (%s) broke the engine", lazy.name, lazy.task_id, exc_info=exc)
            self.broke(node, exc)
        finally:
            self.running -= 1
            self.manager.finished(lazy.name)
            if grant is not None and (go is None or not go.threaded):
                grant.release()
            self.wake.set()
        retry = None if go is None else go.retry
        if retry is not None:
            delay = lazy.task.retry.delay_before(retry.attempt)
            if delay:
                await asyncio.sleep(delay)
            self.ready(retry)
            self.wake.set()
        # it leaves the attempts under way itself (a done callback costs each task a turn of
        # the loop's work); one the run's stop cancelled is let go of there
        del self.active[cast("asyncio.Task[None]", asyncio.current_task(self.loop))]

    def _first_attempt(self, node: Node) -> TaskAttempt | None:
        """``node``'s first attempt here, its call resolved from what it takes; ``None`` where
        the run this carry-on carries on ended it."""
        lazy = node.lazy
        started = time.perf_counter()
        if node.deps or node.binds:
            args, kwargs = resolve(lazy.args, self.state), resolve(lazy.kwargs, self.state)
        else:
            args, kwargs = lazy.args, lazy.kwargs
        attempt = 1
        if self.memory and (found := self._remembered(node)) is not None:
            if found.event == "held" or found.event == "failed":
                self._ended_before(node, found, started, args, kwargs)
                return None
            attempt = found.attempt + 1  # its budget spent there is spent
        return TaskAttempt(node, attempt, started, args, kwargs)

    async def _attempt(self, go: TaskAttempt, grant: Grant | None) -> None:
        """Start ``go``'s call (``RUNNING`` as it starts: a coroutine as it is awaited, a plain
        function when a worker of its executor takes it), await it, and take the task where
        what it returned or raised says."""
        node = go.node
        lazy = node.lazy
        spec = lazy.task
        span = go.span = (
            None
            if self.tracing is None
            else self.tracing.attempt(self.run_id, lazy.task_id, lazy.name, go.attempt)
        )
        try:
            if spec.is_async:
                self.started(lazy, go.attempt, go.decided)
            CURRENT.set((self.context, node, go.attempt))  # in its task, and its thread's
            if self.logs is not None:  # what this attempt logs, in its task and thread, is its
                span_id = None if span is None else span.span_id
                self.logs.enter(lazy.task_id, lazy.name, go.attempt, span_id)
            go.attempt_started = time.perf_counter()
            try:
                args, kwargs = go.args, go.kwargs
                if node.injects:
                    args, kwargs = await self._inject(node, args, kwargs)
                    go.injected = True
                if spec.is_async:
                    if span is None:
                        running = spec.fn(*args, **kwargs)
                    else:
                        running = span.run_async(spec.fn, args, kwargs)
                else:
                    running = self._hand(go, args, kwargs, grant)
                result = await (running if spec.timeout is None else self._within(go, running))
            except asyncio.CancelledError as exc:
                if go.handed is not None:
                    go.waited(self.starts)
                if self.stopping:
                    go.outcome, go.error = "CANCELLED", exc
                    self._stopped(go)
                    raise
                failure: BaseException = exc  # raised by the task's own code: a failure
            except Exception as exc:
                if go.handed is not None:
                    go.waited(self.starts)
                failure = exc
            else:
                if go.handed is not None:
                    go.waited(self.starts)
                if spec.cache is not None and type(result) is not Jump:
                    await self._save(go, result)
                self._returned(go, result)
                return
            self._raised(go, failure)
        except Exception as exc:
            go.outcome, go.error = "FAILED", exc
            raise
        finally:
            if span is not None:
                span.end(go.outcome, go.error)

    def _hand(
        self, go: TaskAttempt, args: tuple[Any, ...], kwargs: dict[str, Any], grant: Grant | None
    ) -> Awaitable[Any]:
        """Hand plain-function ``go`` to its executor: what its result comes as. It takes this
        task's context (its current_task(), its log scope); ``grant`` is given back when the
        body ends where it runs, not when the run stops waiting."""
        node = go.node
        spec = node.lazy.task
        executor = self.executors.of(spec) if spec.elsewhere else self.executor
        handed = go.handed = Attempt(spec.fn, args, kwargs, go.span, grant, node, self.view)
        running = executor.take(handed)
        go.threaded = grant is not None
        if handed.waiting is None:  # a worker was free: it starts now
            self.started(node.lazy, go.attempt, go.decided)
        else:  # RUNNING when a worker starts it
            self.starts.waits(handed, go.attempt, go.decided)
        return running

    async def _within(self, go: TaskAttempt, running: Awaitable[Any]) -> Any:
        """``running``'s result within its task's timeout (a plain function's thread given up
        on runs on: the run's end does not wait for it)."""
        spec = go.node.lazy.task
        try:
            return await _within(running, cast(float, spec.timeout))
        except TimeoutError:
            if not spec.is_async:
                self.threads_left = True
            raise

    def _stopped(self, go: TaskAttempt) -> None:
        """``go`` was stopped with the run: its task is ``CANCELLED``."""
        node, handed = go.node, go.handed
        spec = node.lazy.task
        # a sync task stopped while its resources were set up started no thread
        waited = node.injects and not go.injected
        abandoned = (
            not spec.is_async and not waited and self.executors.of(spec).started(node.lazy.task_id)
        )
        never = go.attempt == 1 and handed is not None and not self.starts.began(handed)
        self.cancelled(node, None if never else go.started, abandoned=abandoned)

    async def _save(self, go: TaskAttempt, result: Any) -> None:
        """Tell the cache policy of ``go``'s task (where it has one) ``result``, its call as
        written (before :meth:`_returned` completes it)."""
        if cast(Cache, go.lazy.task.cache).policy is not None:
            await cast(RunCache, self.cache).save(go.node, go.args, go.kwargs, result)

    def _returned(self, go: TaskAttempt, result: Any) -> None:
        """``go``'s call returned ``result``: a loop goes on, any other task completes (its
        result kept where it is)."""
        node, handed = go.node, go.handed
        if type(result) is Jump:  # a loop goes on (a jump's route is another task)
            if self.loops is None:
                self.loops = Loops(self)
            jumped = self.loops.jumped(node, result, go.started, go.attempt)
            go.outcome = "COMPLETED" if jumped else "FAILED"
            return
        go.outcome = "COMPLETED"
        results = self.results
        if results is None:
            not_kept = None
        elif handed is not None and handed.kept is not None:  # by its worker
            not_kept = results.kept_by_worker(node, handed.kept, handed.kept.worker)
        else:
            not_kept = results.keep(node, result)
        duration = (time.perf_counter() - go.started) * 1000
        self.completed(node, result, duration, go.attempt, not_kept)

    def _raised(self, go: TaskAttempt, failure: BaseException) -> None:
        """``go``'s call raised ``failure``: another attempt follows where its retry policy
        says, else the task is held for a decision where it holds, else it fails."""
        node, attempt = go.node, go.attempt
        spec = node.lazy.task
        policy = spec.retry
        now = time.perf_counter()
        go.error = failure
        if (
            attempt < policy.max_attempts
            and go.decided is None
            and policy.retries(failure)
            and not isinstance(failure, ResourceFailed)  # set up once a run: the same again
            and not isinstance(failure, ValueLost)  # what it takes is gone: the same again
        ):
            go.outcome = "RETRYING"
            self.retrying(node, attempt, failure, (now - go.attempt_started) * 1000)
            go.retry = TaskAttempt(node, attempt + 1, go.started, go.args, go.kwargs)
        elif self.held.holds(spec):
            self.held.hold(node, attempt, failure, go.started, go.args, go.kwargs)
        else:
            duration = (now - go.started) * 1000
            self.failed(node, failure, attempt=attempt, duration_ms=duration, journal=True)

    def _remembered(self, node: Node) -> Remembered | None:
        """What the run this carry-on carries on noted of ``node``'s attempts, believed
        (:meth:`RunMemory.take`), or ``None``."""
        results, memory = self.results, self.memory
        assert results is not None
        assert memory is not None
        timeout = self.held.hold_timeout(node.lazy.task)
        return memory.take(results.key(node), gate=False, timeout=timeout)

    def _ended_before(
        self,
        node: Node,
        found: Remembered,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """``node``'s last attempt failed in the run this carry-on carries on (``found``): held
        there, it is held again until the deadline set then; failed for good, it fails, no
        attempt run (its retry budget was spent there)."""
        assert self.memory is not None
        failure = FailedInLostRun(self.memory.lost_run, found.attempt, found.error)
        if found.event == "held" and self.held.holds(node.lazy.task):
            self.held.hold(node, found.attempt, failure, started, args, kwargs, found.deadline)
        else:
            self.failed(node, failure, attempt=found.attempt)

    async def _inject(
        self, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``node``'s call with its resources' values in place of its injects."""
        resources = self.resources
        assert resources is not None  # the graph has injects: the run has resources
        spec = node.lazy.task
        in_worker = not spec.is_async and self.executors.sends_calls(spec)
        return await resources.inject(node, args, kwargs, in_worker=in_worker)

    async def _from_cache(
        self, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any], started: float
    ) -> bool:
        """Whether ``node`` took its result from its cache: it ends ``COMPLETED`` at once,
        ``cached`` (from the run that kept it, when from the results store), never running."""
        hit = await cast(RunCache, self.cache).take(node, args, kwargs)
        if hit is None:
            return False
        not_kept = None if hit.from_run is not None else cast(RunCache, self.cache).not_kept(node)
        duration = since(started)
        self.cached(
            node, hit.value, duration_ms=duration, reused_from=hit.from_run, not_kept=not_kept
        )
        return True

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
        self.ready(TaskAttempt(node, attempt, started, args, kwargs, decided))

    def _stops(self, node: Node) -> bool:
        """Whether one of ``node``'s features (a loop, routes, a map, a
        condition, a gate, see :mod:`.workflow._features`) stops it from starting now."""
        return any(feature.stops(self, node) for feature in node.features)

    def park(self, node: Node) -> None:
        """Routed ``node`` is ready but for being wanted: it starts once it is
        (:meth:`_wanted`), or ends not routed (:meth:`_not_routed`)."""
        self.parked[id(node)] = node

    def reuse_later(self, items: list[Node], steps: list[Step]) -> None:
        """``items`` joined the run (a map's, a loop's iteration), some with results its rerun's
        run kept (``steps``): those end with them once read, the others start."""
        load = self.loop.create_task(self._reuse_items(items, steps))
        self.loads.add(load)
        load.add_done_callback(self.loads.discard)

    async def _reuse_items(self, items: list[Node], steps: list[Step]) -> None:
        """A rerun's map made ``items`` (or a loop an iteration): those whose results its run
        kept (``steps``) end ``COMPLETED`` with them once read and proven, the others start."""
        results = self.results
        assert results is not None
        try:
            await results.load_items(steps)
        finally:
            self.wake.set()
        reused = results.reused
        rest = []
        for item in items:
            found = reused.get(id(item))
            if found is None:
                rest.append(item)
                continue
            value, from_run = found
            if type(value) is Jump and self.loops is not None:  # a loop's iteration's
                self.loops.jumped(item, value, time.perf_counter(), 1, reused_from=from_run)
                continue
            self.completed(item, value, reused_from=from_run)
        for item in rest:
            self.ready(item)
