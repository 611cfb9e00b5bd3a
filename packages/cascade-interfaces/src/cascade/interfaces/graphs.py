"""A run's graph of tasks and their dependencies, as its ``ENGINE_STARTED`` and snapshots carry
it (docs/protocol.md, "Telemetry")."""

from ._graphs import (
    MAX_GRAPH_BYTES,
    MAX_GRAPH_ID_LENGTH,
    MAX_GRAPH_NODES,
    GraphNode,
    RunGraph,
    check_graph,
)

__all__ = [
    "GraphNode",
    "MAX_GRAPH_BYTES",
    "MAX_GRAPH_ID_LENGTH",
    "MAX_GRAPH_NODES",
    "RunGraph",
    "check_graph",
]
