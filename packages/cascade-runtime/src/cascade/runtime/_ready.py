"""What waits to start in a run: a task's next attempt, and the ready tasks of one name."""

from __future__ import annotations

from collections import deque
from typing import Any

from cascade.interfaces import Decided

from ._graph import Node

__all__ = ["Group", "Retry"]


class Retry:
    """A task's next attempt, ready once its retry delay is over: it starts like a first attempt."""

    __slots__ = ("args", "attempt", "decided", "kwargs", "lazy", "node", "started")

    def __init__(
        self,
        node: Node,
        attempt: int,
        started: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        decided: Decided | None = None,
    ) -> None:
        self.node = node
        self.lazy = node.lazy
        self.attempt = attempt
        self.started = started  # of the first attempt, for duration_ms
        self.args = args
        self.kwargs = kwargs
        self.decided = decided  # a retry decided on a held task: one attempt, then held again


class Group:
    """Ready nodes of one task name: constraints only look at the name, so one check serves all."""

    __slots__ = ("marked", "nodes")

    def __init__(self) -> None:
        self.nodes: deque[Node | Retry] = deque()
        self.marked = 0  # how many nodes at the front have had their BLOCKED event
