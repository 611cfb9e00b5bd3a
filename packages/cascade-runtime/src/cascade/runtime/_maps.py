"""A run's maps: a map never starts; once its keywords' values are known it makes its items,
each a task of the run named ``<map's id>[i]`` that the map waits for, and it ends once they
have, with their results in order.

Its features (:mod:`.workflow._features`) ask here: :meth:`Maps.make` when it is first ready,
:meth:`Maps.ends` when it is ready again (its items ended).
"""

from __future__ import annotations

import time
from typing import Any, Protocol, cast

from ._task_states import TaskStates, since
from .results._rerun import Step
from .workflow._graph import Node
from .workflow._run_state import resolve
from .workflow._task import LazyResult, MapError, MappedLazyResult

__all__ = ["MappingRun", "Maps"]


class _Held(Protocol):
    def added(self, nodes: list[Node]) -> None: ...


class MappingRun(TaskStates, Protocol):
    """What :class:`Maps` asks of the run whose maps it keeps: its tasks' transitions, and the
    rest below."""

    total: int

    @property
    def held(self) -> _Held: ...

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
            run.failed(node, exc)
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
        run.mapped(node, len(items))
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
        result = [values[item.index] for item in items]
        results = run.results
        not_kept = None if results is None else results.keep(node, result)
        run.completed(node, result, duration_ms=since(started), not_kept=not_kept)
        return True

    def made(self, node: Node) -> bool:
        """Whether ``node`` is a map that made its items and has not ended."""
        return bool(self._made) and id(node) in self._made

    def started(self, node: Node) -> float | None:
        """When map ``node`` made its items, if it is one that did and has not ended."""
        found = self._made.get(id(node)) if self._made else None
        return None if found is None else found[1]
