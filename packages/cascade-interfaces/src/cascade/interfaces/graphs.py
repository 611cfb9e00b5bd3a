"""A run's graph of tasks and their dependencies, as its ``ENGINE_STARTED`` and snapshots carry
it (docs/protocol.md, "Telemetry")."""

from ._graphs import (
    RunGraph,
    check_graph,
)

__all__ = [
    "RunGraph",
    "check_graph",
]
