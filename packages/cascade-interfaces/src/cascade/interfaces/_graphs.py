"""A run's graph of tasks, as its ``ENGINE_STARTED`` and its snapshots carry it (additive).

An engine sends it only for a run of at most :data:`MAX_GRAPH_NODES` tasks whose graph
encodes in at most :data:`MAX_GRAPH_BYTES`; a bigger run sends ``graph_nodes`` instead. The
field travels unchecked in :class:`~cascade.interfaces.LifecycleEvent` and
:class:`~cascade.interfaces.RunSnapshot` (a malformed graph must not cost a reader the rest of
the message): a reader takes it through :func:`check_graph`, which refuses what no engine
sends.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError

__all__ = [
    "MAX_GRAPH_BYTES",
    "MAX_GRAPH_ID_LENGTH",
    "MAX_GRAPH_NODES",
    "GraphNode",
    "RunGraph",
    "check_graph",
]

MAX_GRAPH_NODES = 2_000
"""The most tasks of a run whose graph an engine sends (and a reader takes)."""
MAX_GRAPH_BYTES = 128 * 1024
"""The most bytes a run's graph takes encoded, for an engine to send it."""
MAX_GRAPH_ID_LENGTH = 256
"""The longest task id (and task name) a graph's node has."""

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_GRAPH_ID_LENGTH)]
_Ids = Annotated[list[_Text], msgspec.Meta(max_length=MAX_GRAPH_NODES)]


# gc=False (both): strings and lists of them, never a cycle; a run keeps its graph for its
# life, and 2,000 tracked nodes would cost every full collection meanwhile
class GraphNode(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One task of a run's graph: its ``id`` (the ``task_id`` its task states carry), its task
    ``name``, and the ids of the tasks it runs ``after``. ``map`` is ``True`` for a mapped task
    (its items appear at run time as ``<id>[i]``, see ``items`` on ``RUNNING``);
    ``conditions`` the ids among ``after`` it takes as a condition or a route (``run_if``, a
    router's selector) rather than as data; ``order`` those it runs after only for their
    order (``after``, ``sequence``), taking nothing of theirs (additive: absent, none)."""

    id: _Text
    name: _Text
    after: _Ids
    map: bool = False
    conditions: _Ids = msgspec.field(default_factory=list)
    order: _Ids = msgspec.field(default_factory=list)


class RunGraph(msgspec.Struct, kw_only=True, gc=False):
    """A run's tasks and their dependencies, those depended on first where the engine could."""

    nodes: Annotated[list[GraphNode], msgspec.Meta(max_length=MAX_GRAPH_NODES)]


def check_graph(value: Any) -> RunGraph:
    """``value`` (a message's decoded ``graph``) as a :class:`RunGraph`, checked as a reader
    must: at most :data:`MAX_GRAPH_NODES` nodes, ids and names of 1 to
    :data:`MAX_GRAPH_ID_LENGTH` characters, no id twice, ``after`` naming ids of the graph
    once each and not the node itself, ``conditions`` and ``order`` naming ids of its
    ``after`` once each, no cycle.
    :class:`InvalidMessageError` naming what is wrong otherwise."""
    if isinstance(value, RunGraph):
        graph = value
    elif isinstance(value, dict):
        graph = convert(value, RunGraph, "$.graph")
    else:
        raise InvalidMessageError(f"$.graph must be an object, not {type(value).__name__}")
    nodes = graph.nodes
    ids = {node.id for node in nodes}
    if len(ids) != len(nodes):
        seen: set[str] = set()
        for node in nodes:
            if node.id in seen:
                raise InvalidMessageError(f"$.graph: the id {node.id!r} names two nodes")
            seen.add(node.id)
    for index, node in enumerate(nodes):
        after = set(node.after)
        where = f"$.graph.nodes[{index}]"
        if len(after) != len(node.after):
            raise InvalidMessageError(f"{where}.after names a task twice")
        if node.id in after:
            raise InvalidMessageError(f"{where}.after names the node itself")
        unknown = after - ids
        if unknown:
            raise InvalidMessageError(f"{where}.after names {min(unknown)!r}, no node's id")
        if node.conditions and not after.issuperset(node.conditions):
            raise InvalidMessageError(f"{where}.conditions names a task not in its after")
        if len(set(node.conditions)) != len(node.conditions):
            raise InvalidMessageError(f"{where}.conditions names a task twice")
        if node.order and not after.issuperset(node.order):
            raise InvalidMessageError(f"{where}.order names a task not in its after")
        if len(set(node.order)) != len(node.order):
            raise InvalidMessageError(f"{where}.order names a task twice")
    cycle = _in_a_cycle(graph)
    if cycle is not None:
        raise InvalidMessageError(f"$.graph: {cycle!r} is in a cycle of its after")
    return graph


def _in_a_cycle(graph: RunGraph) -> str | None:
    """A node in a cycle of ``after`` (Kahn's algorithm), else ``None``."""
    waiting = {node.id: len(node.after) for node in graph.nodes}
    dependents: dict[str, list[str]] = {}
    for node in graph.nodes:
        for before in node.after:
            dependents.setdefault(before, []).append(node.id)
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    while ready:
        for dependent in dependents.get(ready.pop(), ()):
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return next((node_id for node_id, count in waiting.items() if count), None)
