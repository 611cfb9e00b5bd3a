"""Turning a run's target into a checked graph of lazy results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._errors import CycleError, InvalidTargetError
from ._param import Param, bind_params
from ._task import LazyResult

__all__ = [
    "NAME_LIMIT",
    "Graph",
    "Node",
    "build_graph",
    "resolve",
    "run_name",
    "target_results",
    "task_keys",
]


NAME_LIMIT = 256
"""The longest run name readers take."""


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        yield from value
    elif isinstance(value, dict):
        yield from value.values()


def _scan(node: LazyResult[Any]) -> tuple[list[LazyResult[Any]], list[Param[Any]]]:
    """The distinct lazy results among ``node``'s arguments and its condition, at any depth of
    nesting, and the :class:`Param` among them."""
    found: dict[int, LazyResult[Any]] = {}
    params: list[Param[Any]] = []
    stack: list[Any] = [*node.args, *node.kwargs.values(), node.condition]
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if isinstance(value, LazyResult):
            found.setdefault(id(value), value)
        elif isinstance(value, Param):
            params.append(value)
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            if id(value) in seen:  # a container that holds itself
                continue
            seen.add(id(value))
            stack.extend(_children(value))
    return list(found.values()), params


def _add_param(params: dict[str, Param[Any]], param: Param[Any]) -> None:
    known = params.setdefault(param.name, param)
    if known is not param and not known.same(param):
        raise ValueError(
            f"two parameters named {param.name} differ ({known!r} and {param!r}): one name, "
            "one parameter"
        )


class Node:
    """A lazy result in a run, with its edges and its state."""

    __slots__ = ("binds", "dependents", "deps", "done", "lazy", "result", "skipped", "waiting")

    def __init__(self, lazy: LazyResult[Any]) -> None:
        self.lazy = lazy
        self.binds = False  # a Param among its arguments or its condition
        self.skipped = False
        self.done = False  # it has its terminal state: completed, failed, skipped or cancelled
        self.deps: list[Node] = []
        self.dependents: list[Node] = []
        self.waiting = 0
        self.result: Any = None


class Graph:
    """Every node a target needs, in an order where dependencies come first; ``params``: the
    :class:`Param` among them by name, and ``values`` what each is bound to (:meth:`bind`)."""

    def __init__(self, nodes: list[Node], params: dict[str, Param[Any]] | None = None) -> None:
        self.nodes = nodes
        self.by_lazy = {id(n.lazy): n for n in nodes}
        self.params = params or {}
        self.values: dict[str, Any] = {}

    def bind(self, given: Mapping[str, Any] | None) -> None:
        """Bind every parameter to its value (``given``, else its default); :class:`ParamError`
        naming a parameter missing, unknown or ill-typed."""
        self.values = bind_params(self.params, given or {})


def _target_roots(target: Any) -> list[LazyResult[Any]]:
    if isinstance(target, LazyResult):
        return [target]
    if isinstance(target, (list, tuple)):
        values = list(target)
    elif isinstance(target, dict):
        values = list(target.values())
    else:
        raise InvalidTargetError(
            "a run's target must be a lazy result (a call of a @task), or a list, tuple or "
            f"dict of them, not {type(target).__name__}"
        )
    bad = [v for v in values if not isinstance(v, LazyResult)]
    if bad:
        raise InvalidTargetError(
            f"every item of a run's target must be a lazy result (a call of a @task), "
            f"not {type(bad[0]).__name__}: {bad[0]!r}"
        )
    return values


def build_graph(target: Any) -> Graph:
    """Collect the target's nodes and check for cycles; raises before anything runs."""
    roots = _target_roots(target)
    nodes: dict[int, Node] = {}
    order: list[Node] = []
    # Iterative DFS with colours: 1 = on the current path, 2 = done.
    colour: dict[int, int] = {}
    for root in roots:
        if colour.get(id(root)) == 2:
            continue
        stack: list[tuple[LazyResult[Any], Iterator[LazyResult[Any]]]] = []
        colour[id(root)] = 1
        stack.append((root, iter(_scan(root)[0])))
        while stack:
            lazy, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                colour[id(lazy)] = 2
                node = Node(lazy)
                nodes[id(lazy)] = node
                order.append(node)
                continue
            state = colour.get(id(dep))
            if state == 1:
                path = [entry[0].task_id for entry in stack]
                cycle = [*path[path.index(dep.task_id) :], dep.task_id]
                raise CycleError(cycle)
            if state is None:
                colour[id(dep)] = 1
                stack.append((dep, iter(_scan(dep)[0])))
    params: dict[str, Param[Any]] = {}
    for node in order:
        upstream, found = _scan(node.lazy)
        for dep in upstream:
            parent = nodes[id(dep)]
            node.deps.append(parent)
            parent.dependents.append(node)
        node.waiting = len(node.deps)
        for param in found:
            _add_param(params, param)
        node.binds = bool(found)
    return Graph(order, params)


def resolve(value: Any, graph: Graph) -> Any:
    """``value`` with every lazy result in it replaced by its node's result, and every
    :class:`Param` by its bound value."""
    if isinstance(value, LazyResult):
        return graph.by_lazy[id(value)].result
    if isinstance(value, Param):
        return graph.values[value.name]
    if isinstance(value, list):
        return [resolve(v, graph) for v in value]
    if isinstance(value, tuple):
        items = [resolve(v, graph) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: resolve(v, graph) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(resolve(v, graph) for v in value)
    return value


def target_results(target: Any, graph: Graph) -> Any:
    """The results of ``target``'s lazy results, in its shape (a value, a list, tuple or dict)."""
    if isinstance(target, LazyResult):
        return graph.by_lazy[id(target)].result
    if isinstance(target, dict):
        return {k: graph.by_lazy[id(v)].result for k, v in target.items()}
    results = [graph.by_lazy[id(v)].result for v in target]
    return tuple(results) if isinstance(target, tuple) else results


def run_name(target: Any, name: str | None) -> str | None:
    """A run's name: ``name`` (1 to :data:`NAME_LIMIT` characters, else ``ValueError``), else
    its target's task name (a list's or dict's first item's), cut at :data:`NAME_LIMIT`."""
    if name is not None:
        if not isinstance(name, str) or not name or len(name) > NAME_LIMIT:
            raise ValueError(f"a run's name is a string of 1 to {NAME_LIMIT} characters")
        return name
    if isinstance(target, LazyResult):
        return target.name[:NAME_LIMIT]
    items = list(target.values()) if isinstance(target, dict) else list(target)
    return items[0].name[:NAME_LIMIT] if items and isinstance(items[0], LazyResult) else None


def task_keys(graph: Graph) -> list[str]:
    """Each node's stable key, in graph order: ``name#n``, its ``n``-th task of that name in
    the graph's order (dependencies first, the target's items in their order). The same
    workflow built again gives the same keys."""
    seen: dict[str, int] = {}
    keys = []
    for node in graph.nodes:
        name = node.lazy.name
        seen[name] = index = seen.get(name, 0) + 1
        keys.append(f"{name}#{index}")
    return keys
