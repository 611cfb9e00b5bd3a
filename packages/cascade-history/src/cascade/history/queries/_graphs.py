"""A run's graph of tasks as stored (``run_graphs``, revision 0019): what its ``ENGINE_STARTED``
sent (``LifecycleEvent.graph``, checked; or ``graph_nodes``, its size above the bound), written
once (the first stays) and read one run at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa

from cascade.interfaces import InvalidMessageError, LifecycleEvent
from cascade.interfaces.graphs import RunGraph, check_graph

from ..store._inserts import insert_new
from ..store._schema import run_graphs, runs
from ._queries import Among, among_filter

__all__ = ["RecordedGraph", "graph_query", "graph_row", "store_graphs"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RunGraph).decode
_INT32 = 2**31 - 1


@dataclass(frozen=True, slots=True)
class RecordedGraph:
    """A recorded run's graph: ``graph``, its tasks and their dependencies as its engine sent
    them, or ``None`` where its engine sent only ``nodes``, its task count, above the graph's
    bound (:data:`~cascade.interfaces.wire.MAX_GRAPH_NODES`)."""

    run_id: str
    nodes: int
    graph: RunGraph | None

    def to_json(self) -> dict[str, Any]:
        """``run_id``, ``nodes`` (the graph's list of nodes, ``None`` where none was sent) and
        ``graph_nodes`` (the task count)."""
        return {
            "run_id": self.run_id,
            "nodes": None if self.graph is None else msgspec.to_builtins(self.graph.nodes),
            "graph_nodes": self.nodes,
        }


def graph_row(run_id: str, body: LifecycleEvent) -> dict[str, Any] | None:
    """The ``run_graphs`` row of a run's ``ENGINE_STARTED``; ``None`` when it sent neither a
    graph nor its size (an engine before graphs). :class:`InvalidMessageError` for a malformed
    graph (only the graph is refused: the rest of the start is stored)."""
    if body.graph is not None:
        graph = check_graph(body.graph)
        return {"run_id": run_id, "nodes": len(graph.nodes), "graph": _encode(graph).decode()}
    if body.graph_nodes is not None:
        if body.graph_nodes > _INT32:
            raise InvalidMessageError("body.graph_nodes is out of bounds")
        return {"run_id": run_id, "nodes": body.graph_nodes, "graph": None}
    return None


def store_graphs(connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the graphs of runs that have none stored (the first stays); how many were new."""
    return len(insert_new(connection, run_graphs, rows, (run_graphs.c.run_id,)))


def graph_query(
    connection: sa.Connection, run_id: str, among: Among | None = None
) -> RecordedGraph | None:
    """The graph stored for the run whose id is ``run_id`` (of ``among``'s runs only, when
    given); ``None`` when none is (an unknown run, another's, or its engine sent none)."""
    query = sa.select(run_graphs.c.nodes, run_graphs.c.graph).where(run_graphs.c.run_id == run_id)
    if among is not None:
        seen = sa.select(runs.c.run_id).where(runs.c.run_id == run_id, among_filter(among))
        query = query.where(run_graphs.c.run_id.in_(seen))
    row = connection.execute(query).first()
    if row is None:
        return None
    graph = None if row.graph is None else _decode(row.graph)
    return RecordedGraph(run_id, row.nodes, graph)
