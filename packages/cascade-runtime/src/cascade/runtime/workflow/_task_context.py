"""The task a piece of code runs in: its run, its attempt and its idempotency key."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, cast

from ._graph import Node, task_keys

__all__ = ["CURRENT", "RunContext", "TaskContext", "current_task"]


class RunContext:
    """What every task of one run shares in its context (its stable keys made on first ask)."""

    __slots__ = ("_keys", "graph", "root_run", "run_id")

    def __init__(self, run_id: str, root_run: str, graph: Any, keys: list[str] | None) -> None:
        self.run_id = run_id
        self.root_run = root_run
        self.graph = graph
        self._keys: dict[int, str] | None = None
        if keys is not None:
            self._keys = {id(n): key for n, key in zip(graph.nodes, keys, strict=True)}

    def key(self, node: Node) -> str:
        keys = self._keys
        if keys is None:
            nodes = self.graph.nodes
            keys = self._keys = {
                id(n): k for n, k in zip(nodes, task_keys(self.graph), strict=True)
            }
        key = keys.get(id(node))
        if key is None and node.item_of is not None:  # an item of a map: the map's key[index]
            parent, index = node.item_of
            key = f"{self.key(parent)}[{index}]"
        if key is None and node.dependents:  # a loop's iteration: the loop's key @n, as its id
            loop = node.dependents[0]
            prefix = f"{loop.lazy.task_id}@"
            if node.lazy.task_id.startswith(prefix):
                key = f"{self.key(loop)}@{node.lazy.task_id[len(prefix) :]}"
        if key is None:
            raise KeyError(node.lazy.task_id)
        return key


# (the run's shared part, the node, the attempt): a tuple per attempt, a TaskContext on demand;
# in a worker process, the TaskContext the engine sent with the attempt
CURRENT: contextvars.ContextVar[tuple[RunContext, Node, int] | TaskContext | None] = (
    contextvars.ContextVar("cascade_task", default=None)
)


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The task the current code runs in (:func:`current_task`).

    ``run_id``, ``task_id``, ``task_name`` and ``attempt`` (from 1) name the attempt;
    ``key`` is the task's stable key in its workflow (``name#n``: the ``n``-th task of that
    name in the graph's order), the same in every run of that workflow; ``root_run`` is the
    first run of its line (the run itself, unless it is a rerun: then the run first rerun);
    ``idempotency_key`` is ``f"{root_run}:{key}"``, the same for a task in a run and in every
    rerun of it, so that a side effect done once (a payment, a mail) can be deduplicated.
    """

    run_id: str
    task_id: str
    task_name: str
    attempt: int
    key: str
    root_run: str

    @property
    def idempotency_key(self) -> str:
        """``f"{root_run}:{key}"``: the same in a run and in all its reruns."""
        return f"{self.root_run}:{self.key}"


def current_task() -> TaskContext | None:
    """The task the calling code runs in (a coroutine task, or a plain-function task in the
    engine's threads or in a worker process, and what either calls), or ``None`` outside any
    task."""
    current = CURRENT.get()
    if current is None or type(current) is TaskContext:
        return current
    run, node, attempt = cast("tuple[RunContext, Node, int]", current)
    lazy = node.lazy
    return TaskContext(
        run_id=run.run_id,
        task_id=lazy.task_id,
        task_name=lazy.name,
        attempt=attempt,
        key=run.key(node),
        root_run=run.root_run,
    )
