"""A run's graph as its ``ENGINE_STARTED`` and snapshots tell it: each task, what it runs after,
which of those it takes as a condition or a route rather than as data (a routed task runs
after the selectors that decide whether it runs: conditions of its), and which it runs after
only for their order (``after``)."""

from __future__ import annotations

from typing import Any

import msgspec

from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.wire import MAX_GRAPH_BYTES, MAX_GRAPH_ID_LENGTH, MAX_GRAPH_NODES, GraphNode

from ._graph import Graph, Node, order_only
from ._param import Param
from ._router import Router
from ._task import ALWAYS, LazyResult, MappedLazyResult, Unmapped

__all__ = ["wire_graph"]

_NO_IDS: list[str] = []
_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})
_encode = msgspec.json.Encoder().encode


def wire_graph(graph: Graph) -> RunGraph | None:
    """``graph``'s tasks and their edges as the wire carries them; ``None`` for a run of more
    than :data:`MAX_GRAPH_NODES` tasks (told first, at no cost), or one whose graph would take
    more than :data:`MAX_GRAPH_BYTES` encoded or has a task id longer than a reader takes."""
    nodes = graph.nodes
    if len(nodes) > MAX_GRAPH_NODES:
        return None
    wire = []
    routing = graph.routing
    for node in nodes:
        lazy = node.lazy
        task_id = lazy.task_id
        if len(task_id) > MAX_GRAPH_ID_LENGTH:
            return None
        deps = node.deps
        deciders = _NO_IDS
        if routing is not None and id(node) in routing.claims:
            ids = {dep.lazy.task_id for dep in deps}
            deciders = [
                decider.lazy.task_id
                for decider in routing.deciders(node, graph.by_lazy)
                if decider.lazy.task_id not in ids
            ]
        order = _NO_IDS
        if not deps and not deciders:
            after = _NO_IDS
            conditions = _NO_IDS
        else:
            after = [dep.lazy.task_id for dep in deps] + deciders
            guarded = lazy.condition is not ALWAYS or node.routers
            conditions = _conditions(node, graph.same) if guarded else _NO_IDS
            if deciders:
                conditions = [*conditions, *deciders]
            if lazy.order:
                order = [dep.lazy.task_id for dep in order_only(node, graph.same)]
        wire.append(
            GraphNode(
                id=task_id,
                name=lazy.name[:MAX_GRAPH_ID_LENGTH],
                after=after,
                map=type(lazy) is MappedLazyResult,
                conditions=conditions,
                order=order,
            )
        )
    shape = RunGraph(nodes=wire)
    if len(_encode(shape)) > MAX_GRAPH_BYTES:  # about 60 µs for 2,000 nodes
        return None
    return shape


def _conditions(node: Node, same: dict[int, int]) -> list[str]:
    """The ids of ``node``'s dependencies it takes only as its condition (``run_if``) or a
    router's selector (``same``: the graph's pure calls' twins)."""
    lazy = node.lazy
    asked: dict[int, None] = {}
    if lazy.condition is not ALWAYS:
        _lazies([lazy.condition], asked, selectors=True)
    for router in node.routers:
        if isinstance(router.selector, LazyResult):
            asked[id(router.selector)] = None
    if not asked:
        return _NO_IDS
    data: dict[int, None] = {}
    _lazies([*lazy.args, *lazy.kwargs.values()], data, selectors=False)
    if same:
        asked = {same.get(key, key): None for key in asked}
        data = {same.get(key, key): None for key in data}
    return [
        dep.lazy.task_id for dep in node.deps if id(dep.lazy) in asked and id(dep.lazy) not in data
    ]


def _lazies(values: list[Any], found: dict[int, None], *, selectors: bool) -> None:
    """Note in ``found`` the lazy results among ``values`` at any depth: a router's routes, and
    its selector only where ``selectors``."""
    stack = values
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if type(value) in _PLAIN or isinstance(value, Param):
            continue
        if isinstance(value, LazyResult):
            found[id(value)] = None
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            if id(value) not in seen:
                seen.add(id(value))
                stack.extend(value.values() if isinstance(value, dict) else value)
        elif isinstance(value, Router):
            stack.extend(value.routes.values())
            if selectors:
                stack.append(value.selector)
        elif isinstance(value, Unmapped):
            stack.append(value.value)
