"""A lazy result in a run: a node of its graph, with its edges and its state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._router import Router
    from ._task import LazyResult

__all__ = ["Node"]


class Node:
    """A lazy result in a run, with its edges and its state."""

    __slots__ = (
        "binds",
        "dependents",
        "deps",
        "done",
        "failed",
        "guarded",
        "injects",
        "item_of",
        "lazy",
        "result",
        "routers",
        "skipped",
        "waiting",
        "wanted",
    )

    def __init__(self, lazy: LazyResult[Any], item_of: tuple[Node, int] | None = None) -> None:
        self.lazy = lazy
        self.item_of = item_of  # an item of a map: the map's node and the item's index
        self.binds = False  # a Param among its arguments or its condition
        self.routers: tuple[Router[Any], ...] = ()  # the routers among its arguments
        # a condition, routers, whether it is routed (looked at before it starts), or
        # resources it asks for
        self.guarded = False
        self.injects = False  # a resource injected: by a default of its task, or where called
        self.skipped = False
        self.failed = False
        self.done = False  # it has its terminal state: completed, failed, skipped or cancelled
        # whether the run needs it: None while its routers' choices do not tell (see _routing)
        self.wanted: bool | None = True
        self.deps: list[Node] = []
        self.dependents: list[Node] = []
        self.waiting = 0
        self.result: Any = None
