"""A run's maps: a map never starts; once its keywords' values are known it makes its items,
each a task of the run named ``<map's id>[i]`` that the map waits for, and it ends once they
have, with their results in order.

Its policies (:mod:`.workflow._policy`) ask here: :meth:`Maps.make` when it is first ready,
:meth:`Maps.ends` when it is ready again (its items ended).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from ._events import Event, TaskCompleted, TaskMapped
from .results._rerun import Step
from .results._run_results import RunResults
from .workflow._graph import Node
from .workflow._run_state import RunState, resolve
from .workflow._task import LazyResult, MapError, MappedLazyResult

__all__ = ["MappingRun", "Maps"]


class _Held(Protocol):
    def added(self, nodes: list[Node]) -> None: ...


class MappingRun(Protocol):
    """What :class:`Maps` asks of the run whose maps it keeps."""

    run_id: str
    emit: Callable[[Event], None]
    total: int

    @property
    def state(self) -> RunState: ...

    @property
    def results(self) -> RunResults | None: ...

    @property
    def held(self) -> _Held: ...

    def ready(self, node: Node) -> None: ...

    def completed(self, node: Node) -> None: ...

    def fail_unstarted(self, node: Node, exc: Exception, attempt: int = 1) -> None: ...

    def reuse_later(self, items: list[Node], steps: list[Step]) -> None: ...


class Maps:
    """The maps of one run that made their items, until each ends."""

    def __init__(self, run: MappingRun) -> None:
        self._run = run
        self._made: dict[int, tuple[list[Node], float]] = {}  # its items and when, by map

    def make(self, node: Node) -> None:
        """Make the items of map ``node``, its keywords' values known: each a node of the run
        that ``node`` waits for, ready to start."""
        run = self._run
        lazy = cast(MappedLazyResult[Any], node.lazy)
        try:
            rows = lazy.items(resolve(lazy.kwargs, run.state))
        except MapError as exc:
            run.fail_unstarted(node, exc)
            return
        spec, task_id = lazy.task, lazy.task_id
        first = len(run.state.done)  # the items' indexes: the run's state grows with them
        items = [
            Node(LazyResult(spec, (), row, f"{task_id}[{index}]"), first + index, (node, index))
            for index, row in enumerate(rows)
        ]
        for item in items:
            item.dependents.append(node)
            item.injects = node.injects  # its task's inject defaults, an unmapped(inject(...))
            item.lazy.resources = lazy.resources  # the map's with_constraints, for each item
        # the run's, not the graph's: what the map waits for and is computed from (a decided
        # item's value taints it)
        run.state.add_items(node, items)
        self._made[id(node)] = (items, time.perf_counter())
        run.total += len(items)
        run.held.added(items)
        run.emit(
            TaskMapped(run_id=run.run_id, task_id=task_id, task_name=lazy.name, items=len(items))
        )
        if not items:
            self.ends(node)
            return
        reuse = run.results.add_items(node, items) if run.results is not None else None
        if reuse:
            run.reuse_later(items, reuse)
            return
        for item in items:
            run.ready(item)

    def ends(self, node: Node) -> bool:
        """Whether ``node`` is a map that made its items (all of which completed): it
        completes with their results, in order."""
        made = self._made.pop(id(node), None) if self._made else None
        if made is None:
            return False
        items, started = made
        run = self._run
        values = run.state.result
        values[node.index] = result = [values[item.index] for item in items]
        lazy = node.lazy
        results = run.results
        run.emit(
            TaskCompleted(
                run_id=run.run_id,
                task_id=lazy.task_id,
                task_name=lazy.name,
                duration_ms=(time.perf_counter() - started) * 1000,
                not_kept=None if results is None else results.keep(node, result),
            )
        )
        run.completed(node)
        return True

    def made(self, node: Node) -> bool:
        """Whether ``node`` is a map that made its items and has not ended."""
        return bool(self._made) and id(node) in self._made

    def started(self, node: Node) -> float | None:
        """When map ``node`` made its items, if it is one that did and has not ended."""
        found = self._made.get(id(node)) if self._made else None
        return None if found is None else found[1]
