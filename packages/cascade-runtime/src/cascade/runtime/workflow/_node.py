"""A lazy result in a graph: a node, with its edges. Its state in a run is the run's
(:class:`~._run_state.RunState`), so one graph can be run more than once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._router import Router
    from ._task import LazyResult

__all__ = ["Node"]


class Node:
    """A lazy result in a graph, with its edges; ``index``: its place in its run's state (a
    graph's node: in the graph's order; a map's item: given as its run makes it)."""

    __slots__ = (
        "binds",
        "dependents",
        "deps",
        "guarded",
        "index",
        "injects",
        "item_of",
        "lazy",
        "routers",
    )

    def __init__(
        self, lazy: LazyResult[Any], index: int, item_of: tuple[Node, int] | None = None
    ) -> None:
        self.lazy = lazy
        self.index = index
        self.item_of = item_of  # an item of a map: the map's node and the item's index
        self.binds = False  # a Param among its arguments or its condition
        self.routers: tuple[Router[Any], ...] = ()  # the routers among its arguments
        # a condition, routers, whether it is routed (looked at before it starts), or
        # resources it asks for
        self.guarded = False
        self.injects = False  # a resource injected: by a default of its task, or where called
        self.deps: list[Node] = []
        self.dependents: list[Node] = []
