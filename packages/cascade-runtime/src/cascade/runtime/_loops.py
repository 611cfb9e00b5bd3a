"""A run's loops: a task whose call is bound to a :func:`~cascade.runtime.select_jump` returns
a :class:`~cascade.runtime.Jump`, and the run goes on at the route's task.

The bound call is the loop, and its first iteration: when its attempt returns a jump, it does
not end (it stays ``RUNNING``); the run makes its next iteration, a task ``<task_id>@2`` that
calls the route's task with the jump's data, then ``@3`` from that one's jump, and so on.
Each iteration is a task of the run like any other, under the name of the task it calls, so
constraints, pauses, retries and holds of that name govern every iteration. An iteration
that jumps ends ``COMPLETED``; the loop ends with the last one's result (a jump to a route of
``None``: its data), and what needs the loop goes on with it. An iteration that fails (or is
skipped) ends the loop as a failed map item ends its map: what needs it is skipped.

Only the iteration under way is held here (and what it needs): a loop of any length holds
one node at a time, and two slots of the run's state (:meth:`RunState.reset`), its iterations
taking them in turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ._task_states import TaskStates, since
from .results._rerun import Step
from .workflow._graph import Node, upstream
from .workflow._jump import Jump, JumpError, jump_call
from .workflow._resource import Inject
from .workflow._router import RouteMissing, Router
from .workflow._run_state import RunState, resolve
from .workflow._task import LazyResult

__all__ = ["LoopingRun", "Loops", "first_jump"]


class _Held(Protocol):
    def next_iteration(self, last: Node | None, iteration: Node) -> None: ...


class LoopingRun(TaskStates, Protocol):
    """What :class:`Loops` asks of the run whose loops it keeps: its tasks' transitions, and
    the rest below."""

    total: int

    @property
    def held(self) -> _Held: ...

    def reuse_later(self, nodes: list[Node], steps: list[Step]) -> None: ...


class _Loop:
    __slots__ = ("current", "iterations", "node", "not_kept", "slots", "started")

    def __init__(self, node: Node, started: float, not_kept: str | None) -> None:
        self.node = node
        self.started = started
        self.not_kept = not_kept  # why its own call's result (its first jump) was not kept
        self.iterations = 1
        self.current: Node | None = None  # the iteration under way
        # the run's state's slots its iterations take in turn: the one that ended last
        # still reads its own while it makes the next
        self.slots: list[int] = []


class Loops:
    """The loops of one run that have jumped, until each ends; and, in a rerun, the loops whose
    first jump it reuses, until they are ready to go on from it."""

    def __init__(self, run: LoopingRun) -> None:
        self._run = run
        self._loops: dict[int, _Loop] = {}  # by id of the loop's node
        self._of: dict[int, _Loop] = {}  # an iteration under way's loop, by id of its node
        # a rerun's loops' kept first jumps, by node, and the run that kept each
        self._reused: dict[int, tuple[Jump, str]] = {}

    def going(self) -> Iterator[Node]:
        """The iterations under way (a run that stops gives each its end)."""
        for loop in self._loops.values():
            if loop.current is not None:
                yield loop.current

    def reused(self, node: Node, jump: Jump, from_run: str) -> None:
        """A rerun reuses loop ``node``'s first jump: it goes on from it once ready, its
        iterations reused as far as its run kept them, so that it resumes where it failed."""
        self._reused[id(node)] = jump, from_run

    def jumped(
        self,
        node: Node,
        jump: Jump,
        started: float,
        attempt: int,
        *,
        reused_from: str | None = None,
    ) -> bool:
        """``node``'s attempt (begun at ``started``) returned ``jump`` (``reused_from``: a
        rerun's kept result, kept by that run): go where it says; ``False`` where it cannot
        (``node`` failed with a :class:`JumpError`)."""
        run = self._run
        loop = self._of.pop(id(node), None)
        try:
            selector = node.lazy.jumps
            if selector is None:
                raise JumpError(
                    f"{node.lazy.name} returned a Jump, but no select_jump is bound to its call "
                    "(cs.bind(call, cs.select_jump({...})))"
                )
            route = selector.route(jump.target_key)
            call, injects = (None, ()) if route is None else self._call(route, jump.data)
        except (JumpError, RouteMissing) as exc:  # a route's router with no route: as a task's
            if loop is not None:
                loop.current = None
            run.failed(node, exc, attempt=attempt, duration_ms=since(started))
            return False
        results = run.results
        not_kept = None if results is None or reused_from else results.keep(node, jump)
        if loop is None:  # the loop's own call: it goes on as its iterations
            loop = self._loops[id(node)] = _Loop(node, started, not_kept)
        else:  # an iteration that went on elsewhere ends, without ending its loop
            duration = 0.0 if reused_from else since(started)
            run.went_on(
                node,
                duration_ms=duration,
                attempt=attempt,
                not_kept=not_kept,
                reused_from=reused_from,
            )
        if call is None:
            self._end(loop, jump.data)
            return True
        loop.iterations += 1
        call.task_id = f"{loop.node.lazy.task_id}@{loop.iterations}"
        state = run.state
        slots = loop.slots
        if len(slots) < 2:
            slots.append(state.add_node())
        at = slots[loop.iterations % 2]
        state.reset(at)
        last = loop.current
        iteration = Node(call, at)
        iteration.dependents.append(loop.node)
        iteration.injects = bool(injects) or _injects(call)
        state.waiting[loop.node.index] = 1
        loop.current = iteration
        self._of[id(iteration)] = loop
        run.total += 1
        run.held.next_iteration(last, iteration)
        step = None if results is None else results.add_iteration(loop.node, iteration)
        if step is None:
            run.ready(iteration)
        else:  # a rerun's, kept by its run: reused once read, not run again
            run.reuse_later([iteration], [step])
        return True

    def ready(self, node: Node) -> bool:
        """Whether ``node``, ready, is a loop that goes on without running its call: one whose
        last iteration has ended (it ends with that one's result), or one whose first jump a
        rerun reuses (it goes on from it)."""
        found = self._reused.pop(id(node), None) if self._reused else None
        if found is not None:
            jump, from_run = found
            self._run.started(node.lazy)
            self.jumped(node, jump, time.perf_counter(), 1, reused_from=from_run)
            return True
        loop = self._loops.get(id(node))
        if loop is None or loop.current is None:
            return False
        last = loop.current
        self._of.pop(id(last), None)
        state = self._run.state
        if state.failed[last.index] or state.skipped[last.index]:
            # readied all the same (it takes a router): it ends so
            del self._loops[id(node)]
            loop.current = None
            run = self._run
            run.skipped(node, f"its iteration {last.lazy.task_id} ended without a result")
            return True
        self._end(loop, state.result[last.index])
        return True

    def _end(self, loop: _Loop, value: Any) -> None:
        run, node = self._run, loop.node
        del self._loops[id(node)]
        loop.current = None
        # what is kept of a loop is its call's: its first jump
        run.completed(node, value, duration_ms=since(loop.started), not_kept=loop.not_kept)

    def _call(self, route: LazyResult[Any], data: Any) -> tuple[LazyResult[Any], Sequence[Inject]]:
        """The next iteration's call: ``route``'s task on its arguments with ``data`` in their
        place, what they take from other tasks given as those tasks' results; and the injects
        passed in it."""
        args, kwargs = jump_call(route, data)
        call = LazyResult(route.task, args, kwargs, route.task_id)
        state = self._run.state
        _, injects = upstream(call)
        needed = _without_result((args, kwargs), state)
        if needed is not None:
            raise JumpError(
                f"a jump to {route.name} leaves it taking the result of {needed.name}, "
                "which has none yet (the loop's own result, or a task that ended without "
                "one): give that argument in the Jump's data"
            )
        call.args = resolve(args, state)
        call.kwargs = resolve(kwargs, state)
        call.resources = route.resources
        call.jumps = route.jumps
        return call, injects


def first_jump(node: Node, value: Any) -> Jump | None:
    """``value``, a rerun's kept result of ``node``, as the loop's first jump it is (the
    loop goes on from it, :meth:`Loops.reused`); ``None``: ``node`` is no loop, or ``value``
    no jump."""
    return value if type(value) is Jump and node.lazy.jumps is not None else None


def _without_result(
    value: Any, state: RunState, seen: set[int] | None = None
) -> LazyResult[Any] | None:
    """The first lazy result :func:`resolve` would take in ``value`` that has no result: of a
    router, its selector and the route it chooses, not a route it does not (which may never
    have run)."""
    seen = set() if seen is None else seen
    if isinstance(value, LazyResult):
        found = state.by_lazy.get(id(value))
        at = -1 if found is None else found.index
        has = at >= 0 and state.done[at] and not state.skipped[at] and not state.failed[at]
        return None if has else value
    if isinstance(value, Router):
        missing = _without_result(value.selector, state, seen)
        if missing is not None:
            return missing
        return _without_result(value.route(resolve(value.selector, state)), state, seen)
    if isinstance(value, (list, tuple, set, frozenset, dict)) and id(value) not in seen:
        seen.add(id(value))  # a container may hold itself
        for inner in value.values() if isinstance(value, dict) else value:
            missing = _without_result(inner, state, seen)
            if missing is not None:
                return missing
    return None


def _injects(call: LazyResult[Any]) -> bool:
    """Whether ``call`` has resources to inject: its task's inject defaults it gives no value."""
    return any(not default.given(call.args, call.kwargs) for default in call.task.injects)
