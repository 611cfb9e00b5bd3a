"""A lazy result in a graph: a node, with its edges. Its state in a run is the run's
(:class:`~._run_state.RunState`), so one graph can be run more than once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._router import Router
    from ._task import LazyResult

__all__ = ["Node", "Feature"]


class Feature(Protocol):
    """A feature of a node's call that its run asks, when the node is ready, whether it stops
    it from starting (:mod:`._features` has them)."""

    def stops(self, run: Any, node: Node, /) -> bool:
        """Whether ``node`` does not start now: the feature ended it, holds it, or made it go
        on in another way (its items, its iterations)."""
        ...


class Node:
    """A lazy result in a graph, with its edges; ``index``: its place in its run's state (a
    graph's node: in the graph's order; a map's item: given as its run makes it);
    ``features``: what its run asks of it before it starts, in order (none: most nodes)."""

    __slots__ = (
        "binds",
        "dependents",
        "deps",
        "features",
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
        self.features: tuple[Feature, ...] = ()  # set once its graph is built
        self.injects = False  # a resource injected: by a default of its task, or where called
        self.deps: list[Node] = []
        self.dependents: list[Node] = []
