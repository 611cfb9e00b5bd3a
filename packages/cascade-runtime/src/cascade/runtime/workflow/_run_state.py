"""One run's state of its graph: what each node has come to, its params' values, the items
its maps made. The graph holds none of it, so a graph built once can be run more than once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._resolve import resolve
from ._task import LazyResult

if TYPE_CHECKING:
    from ._graph import Graph
    from ._node import Node

__all__ = ["RunState", "resolve", "skipped_target", "target_results"]


class RunState:
    """The state of one run of ``graph``, its params bound to ``params`` (:meth:`Graph.bind`
    checks them): one list a field, each node's entry at its :attr:`~Node.index` (lists, not an
    object a node: a large fan-out's run starts with a few list copies).

    ``done``: it has its terminal state (completed, failed, skipped or cancelled); ``failed``,
    ``skipped``: how it ended; ``result``: its value; ``waiting``: how many of its
    dependencies have not ended; ``wanted``: whether the run needs it (``None`` while its
    routers' choices do not tell, see :mod:`._routing`). ``items``: the nodes of the maps'
    items, in the order the run made them; ``items_of``: each map's, by the map's ``id``.
    """

    __slots__ = (
        "by_lazy",
        "done",
        "failed",
        "graph",
        "items",
        "items_of",
        "result",
        "skipped",
        "values",
        "waiting",
        "wanted",
    )

    def __init__(self, graph: Graph, params: Mapping[str, Any] | None = None) -> None:
        self.graph = graph
        self.by_lazy = graph.by_lazy
        self.values: dict[str, Any] = graph.bind(params)
        count = len(graph.nodes)
        self.done = [False] * count
        self.failed = [False] * count
        self.skipped = [False] * count
        self.result: list[Any] = [None] * count
        self.waiting = list(graph.waits)
        self.wanted: list[bool | None] = [True] * count
        if graph.routing is not None:
            for node in graph.routing.routed:
                self.wanted[node.index] = None
        self.items: list[Node] = []
        self.items_of: dict[int, list[Node]] = {}

    def add_items(self, node: Node, items: list[Node]) -> None:
        """Map ``node`` made ``items`` (each its index to come, in order): each waits for
        nothing, and ``node`` for each of them."""
        self.items.extend(items)
        self.items_of[id(node)] = items
        added = len(items)
        self.done += [False] * added
        self.failed += [False] * added
        self.skipped += [False] * added
        self.result += [None] * added
        self.waiting += [0] * added
        self.wanted += [True] * added
        self.waiting[node.index] = added

    def add_node(self) -> int:
        """A node joins the run that waits for nothing (a loop's iteration): its index."""
        self.done.append(False)
        self.failed.append(False)
        self.skipped.append(False)
        self.result.append(None)
        self.waiting.append(0)
        self.wanted.append(True)
        return len(self.done) - 1

    def reset(self, index: int) -> None:
        """The node at ``index`` has ended and nothing reads it again (a loop's iteration two
        before the one under way): a node that joins the run takes its slot, as new, so that
        a loop of any length holds two slots."""
        self.done[index] = self.failed[index] = self.skipped[index] = False
        self.result[index] = None
        self.waiting[index] = 0
        self.wanted[index] = True

    def deps(self, node: Node) -> list[Node]:
        """What ``node`` is computed from in this run: its dependencies, and a map's items."""
        made = self.items_of.get(id(node)) if self.items_of else None
        return node.deps if made is None else [*node.deps, *made]


def target_results(target: Any, state: RunState) -> Any:
    """The results of ``target``'s lazy results in the run ``state`` is of, in its shape (a
    value, a list, tuple or dict)."""
    result, by_lazy = state.result, state.by_lazy
    if isinstance(target, LazyResult):
        return result[by_lazy[id(target)].index]
    if isinstance(target, dict):
        return {k: result[by_lazy[id(v)].index] for k, v in target.items()}
    results = [result[by_lazy[id(v)].index] for v in target]
    return tuple(results) if isinstance(target, tuple) else results


def skipped_target(target: Any, state: RunState) -> tuple[str, Node, Node] | None:
    """The first of ``target``'s lazy results (in its shape's order) whose task was skipped, as
    ``(where, its node, the skipped task it was skipped from)``: ``where`` is ``<Target
    Output>``, with ``[i]`` or ``[key]`` for a list's, tuple's or dict's item; the last is its
    own node where nothing upstream was skipped (a false condition, a route not taken, a
    decision). ``None``: none was skipped but those a skipped task they run after
    (:meth:`~LazyResult.after`, a :func:`sequence` stopped) skipped, as the Cascade engine
    gives ``None`` for a sequence stopped by a skip (in the run ``state`` is of)."""
    graph, skipped = state.graph, state.skipped
    by_lazy = graph.by_lazy
    items: Any = (
        ((None, target),)
        if isinstance(target, LazyResult)
        else target.items()
        if isinstance(target, dict)
        else enumerate(target)
    )
    for at, lazy in items:  # a large fan-out's target: one lookup an item, no text made
        node = by_lazy[id(lazy)]
        if not skipped[node.index]:
            continue
        if node.lazy.order:
            same = graph.same
            ordered = {same.get(id(before), id(before)) for before in node.lazy.order}
            if any(skipped[dep.index] and id(dep.lazy) in ordered for dep in node.deps):
                continue  # a sequence stopped by a skip
        origin = node
        while True:
            upstream = next((dep for dep in state.deps(origin) if skipped[dep.index]), None)
            if upstream is None:
                where = "<Target Output>" if at is None else f"<Target Output>[{at!r}]"
                return where, node, origin
            origin = upstream
    return None
