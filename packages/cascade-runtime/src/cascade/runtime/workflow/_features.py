"""What the features of a task's call ask of its run before it starts: a node's features.

A call with a condition (``run_if``), routers among its arguments, a place only on routes (it
is *routed*), a map, a gate or a bound loop (``cs.bind``) is not simply started once ready:
each of those features may end it first, hold it, or have it go on in another way. Which of
them a node has is found once, when its graph is built (:func:`assign`), as the tuple
:attr:`Node.features <._node.Node.features>`, in the order its run asks them (the first that
stops it ends the asking); a node with none, most of a large fan-out's, costs its run an empty
tuple's test. A retry, a map's item and a loop's iteration have none: their call's features
were asked before its first attempt, or their map's or loop's were.

A feature acts through what its run gives it (:class:`FeaturedRun`): its state, its loops,
maps and holds, and the run's own transitions (park, skip, fail before starting). What a task
asks of the system resources is none: the run groups ready tasks by it (:class:`Run.ready
<cascade.runtime._run.Run.ready>`); nor are the resources a task injects, which its attempt
asks for as it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ._node import Feature, Node
from ._resolve import resolve
from ._routing import Routing, RoutingState
from ._task import ALWAYS, MappedLazyResult

__all__ = ["CONDITION_FALSE", "FeaturedRun", "FeaturedState", "assign", "upstream_ended"]

CONDITION_FALSE = "condition false"
"""A task skipped by its ``run_if``: its ``SKIPPED`` event's error."""


def upstream_ended(node: Node, what: str) -> str:
    """Why a task is skipped: ``node``, a task it needs, ``what`` (failed, was skipped...)."""
    return f"upstream task {node.lazy.name!r} ({node.lazy.task_id}) {what}"


class FeaturedState(RoutingState, Protocol):
    """What a feature reads of its run's state (:class:`~._run_state.RunState`)."""

    def deps(self, node: Node) -> list[Node]: ...


class _Loops(Protocol):
    def ready(self, node: Node) -> bool: ...


class _Maps(Protocol):
    def ends(self, node: Node) -> bool: ...

    def make(self, node: Node) -> None: ...


class _Holds(Protocol):
    def gate(self, node: Node) -> None: ...


class FeaturedRun(Protocol):
    """What a feature asks of the run that asks it (:class:`~cascade.runtime._run.Run`)."""

    @property
    def state(self) -> FeaturedState: ...

    @property
    def loops(self) -> _Loops | None: ...

    @property
    def maps(self) -> _Maps: ...

    @property
    def held(self) -> _Holds: ...

    @property
    def skip_reasons(self) -> dict[int, str]: ...

    def park(self, node: Node) -> None: ...

    def end_skipped(self, node: Node, why: str) -> None: ...

    def skip_dependents(self, node: Node, what: str = "", reason: str = "") -> None: ...

    def failed(self, node: Node, failure: BaseException) -> None: ...


class _Loop:
    """A bound loop: readied again once its last iteration ended, it ends with that one's
    result (or skipped, where it ended without one); a rerun that reuses its first jump goes
    on from it."""

    __slots__ = ()

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        loops = run.loops
        return loops is not None and loops.ready(node)


class _Routed:
    """A task that takes a router or is routed: it waits while its routers' choices do not
    tell whether the run needs it (its run's :class:`~._routing.Demand` ends the wait); it
    ends skipped, and so does what needs it, where a task it needs ended without a result (it
    hears of that only now, ready: it may not need that task)."""

    __slots__ = ("routing",)

    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        state = run.state
        if state.wanted[node.index] is None:
            run.park(node)
            return True
        deps = state.deps(node)
        if not node.routers and not deps:
            return False
        skipped, failed = state.skipped, state.failed
        for dep in deps:
            if (skipped[dep.index] or failed[dep.index]) and self.routing.needs(node, dep, state):
                # noted where it ended (failed, skipped: skip_dependents); a task the run
                # needs is never one ended not routed, which notes none
                reason = run.skip_reasons.get(id(dep)) or upstream_ended(
                    dep, "failed" if failed[dep.index] else "was skipped"
                )
                run.end_skipped(node, reason)
                run.skip_dependents(node, reason=reason)
                return True
        return False


class _MapEnds:
    """A map readied again, its items having ended: it ends with their results."""

    __slots__ = ()

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        return run.maps.ends(node)


class _Condition:
    """A ``run_if``: false, the task is skipped, and so is what needs it."""

    __slots__ = ()

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        if resolve(node.lazy.condition, run.state):
            return False
        run.end_skipped(node, CONDITION_FALSE)
        run.skip_dependents(node, f"was skipped ({CONDITION_FALSE})")
        return True


class _Routes:
    """Routers among its arguments: one taken through chosen routes whose selector is no key
    of its routes fails the task before it starts."""

    __slots__ = ("routing",)

    def __init__(self, routing: Routing) -> None:
        self.routing = routing

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        missing = self.routing.missing_route(node, run.state)
        if missing is None:
            return False
        run.failed(node, missing)
        return True


class _Map:
    """A map never starts: it makes its items (its keywords' values known now), and ends once
    they have (:class:`_MapEnds`)."""

    __slots__ = ()

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        run.maps.make(node)
        return True


class _Gate:
    """A gate: held for a decision from its start, no attempt ever run."""

    __slots__ = ()

    def stops(self, run: FeaturedRun, node: Node) -> bool:
        run.held.gate(node)
        return True


_LOOP, _MAP_ENDS, _CONDITION, _MAP, _GATE = _Loop(), _MapEnds(), _Condition(), _Map(), _Gate()


def assign(nodes: Iterable[Node], routing: Routing | None) -> None:
    """Give each of ``nodes`` (of a graph whose routing is ``routing``) the features its call's
    features make, in the order its run asks them."""
    routed: set[int] = set()
    waits: Feature | None = None
    routes: Feature | None = None
    if routing is not None:
        routed = {id(node) for node in routing.routed}
        waits, routes = _Routed(routing), _Routes(routing)
    for node in nodes:
        lazy = node.lazy
        found: list[Feature] = []
        if lazy.jumps is not None:
            found.append(_LOOP)
        if waits is not None and (node.routers or id(node) in routed):
            found.append(waits)
        mapped = type(lazy) is MappedLazyResult
        if mapped:
            found.append(_MAP_ENDS)
        if lazy.condition is not ALWAYS:
            found.append(_CONDITION)
        if routes is not None and node.routers:
            found.append(routes)
        if mapped:
            found.append(_MAP)
        if lazy.task.awaits_approval:
            found.append(_GATE)
        node.features = tuple(found)
