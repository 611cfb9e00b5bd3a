"""Turning a run's target into a checked graph of lazy results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._errors import CycleError, InvalidTargetError
from ._canonical import NotCanonical, canonical, encode
from ._features import assign
from ._node import Node
from ._param import Param, ParamError, bind_params
from ._resource import Inject
from ._router import RouteMissing, Router
from ._routing import routing
from ._task import ALWAYS, LazyResult, MappedLazyResult, Unmapped

__all__ = [
    "NAME_LIMIT",
    "Graph",
    "Node",
    "build_graph",
    "order_only",
    "run_name",
    "task_keys",
    "upstream",
]


NAME_LIMIT = 256
"""The longest run name readers take."""


_NONE: tuple[Any, ...] = ()
_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})  # values that hold nothing


_Found = tuple[
    "Sequence[LazyResult[Any]]",
    "Sequence[Param[Any]]",
    "Sequence[Router[Any]]",
    "Sequence[Inject]",
]
"""What one lazy result's arguments and condition hold, at any depth of nesting: its
dependencies, the :class:`Param` and the :class:`Router` among them, and the injects passed
where it was called (a plain tuple: made twice a task)."""

_NOTHING: _Found = (_NONE, _NONE, _NONE, _NONE)
"""What a call of plain values only holds, with no condition and no resources asked for."""


def _scan(node: LazyResult[Any]) -> _Found:
    """The distinct lazy results among ``node``'s arguments, its condition, the amounts it
    asks of system resources (a router's selector and routes among them) and the tasks it runs
    after (:meth:`~LazyResult.after`), the :class:`Param`,
    the :class:`Router` and the :class:`Inject` among them.

    Twice a task, on the way to a run's first task: a plain value costs two type tests, a lazy
    result one; a call of plain values only (most calls of a large fan-out) one each."""
    plain = _PLAIN
    jumps = node.jumps
    if node.condition is ALWAYS and node.resources is None and not node.order and jumps is None:
        for value in (*node.args, *node.kwargs.values()) if node.kwargs else node.args:
            if type(value) not in plain:
                break
        else:
            return _NOTHING
    found: dict[int, LazyResult[Any]] = {}
    params: list[Param[Any]] | None = None
    routers: list[Router[Any]] | None = None
    injects: list[Inject] | None = None
    stack: list[Any] = [*node.args, *node.kwargs.values()] if node.kwargs else list(node.args)
    if node.condition is not ALWAYS:
        stack.append(node.condition)
    if node.resources is not None:
        stack.append(node.resources)
    if node.order:
        stack.extend(node.order)
    if jumps is not None:  # what its routes' calls take: computed before it may jump there
        for route in jumps.routes.values():
            if route is not None:
                stack.extend(route.args)
                stack.extend(route.kwargs.values())
    seen: set[int] = set()
    while stack:
        value = stack.pop()
        if isinstance(value, LazyResult):
            found.setdefault(id(value), value)
        elif type(value) in plain:
            continue
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            if id(value) in seen:  # a container that holds itself
                continue
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)
        elif isinstance(value, Param):
            params = [] if params is None else params
            params.append(value)
        elif isinstance(value, Router):
            routers = [] if routers is None else routers
            routers.append(value)
            stack.append(value.selector)
            stack.extend(value.routes.values())
        elif isinstance(value, Unmapped):
            stack.append(value.value)
        elif isinstance(value, Inject):
            injects = [] if injects is None else injects
            injects.append(value)
    found.pop(id(node), None)  # a route's call that takes the loop's own result: its jump's
    return (list(found.values()), params or _NONE, routers or _NONE, injects or _NONE)


def upstream(lazy: LazyResult[Any]) -> tuple[Sequence[LazyResult[Any]], Sequence[Inject]]:
    """The distinct lazy results ``lazy`` takes (its arguments at any depth, its condition,
    its amounts, what it runs after), and the injects passed where it was called."""
    found = _scan(lazy)
    return found[0], found[3]


def order_only(node: Node, same: Mapping[int, int]) -> list[Node]:
    """``node``'s dependencies it runs after only for their order (:meth:`~LazyResult.after`),
    taking them in no other way (an argument, its condition, a router, an amount); ``same``:
    its graph's :attr:`Graph.same`."""
    lazy = node.lazy
    if not lazy.order:
        return []
    ordered = {same.get(id(before), id(before)) for before in lazy.order}
    bare = LazyResult(lazy.task, lazy.args, lazy.kwargs, lazy.task_id)  # the call, no order
    bare.condition, bare.resources = lazy.condition, lazy.resources
    taken = {same.get(id(dep), id(dep)) for dep in _scan(bare)[0]}
    return [dep for dep in node.deps if id(dep.lazy) in ordered and id(dep.lazy) not in taken]


def _add_param(params: dict[str, Param[Any]], param: Param[Any]) -> None:
    known = params.setdefault(param.name, param)
    if known is not param and not known.same(param):
        raise ValueError(
            f"two parameters named {param.name} differ ({known!r} and {param!r}): one name, "
            "one parameter"
        )


class Graph:
    """Every node a target needs, in an order where dependencies come first; ``params``: the
    :class:`Param` among them by name, and ``values`` what each is bound to (:meth:`bind`);
    ``resources``: the name of each resource a task injects, with the first task that does;
    ``executors``: the name of each executor a task names (``@task(executor=...)``), with the
    first task that does; ``items``: the nodes of the maps' items, made while the run runs;
    ``cached``: the nodes whose task has a cache (``with_cache``), in graph order; ``roots``:
    the ``id`` of each lazy result of the target (whose results the run gives back);
    ``routing``: which tasks it needs through its routers' choices (``None``: it has none);
    ``same``: for each call of a pure task that is another's twin (``@task(pure=True)``), the
    ``id`` of the lazy result whose node it shares (``by_lazy`` has both); ``waits``: how many
    dependencies each node has, by its index.

    A graph is structure only: a run's state of it is a :class:`RunState`, so one graph is
    planned, checked and run as often as asked, each run from the start."""

    def __init__(
        self,
        nodes: list[Node],
        params: dict[str, Param[Any]] | None = None,
        resources: dict[str, Node] | None = None,
        cached: list[Node] | None = None,
        executors: dict[str, Node] | None = None,
        roots: set[int] | None = None,
        routed: bool = False,
        twins: dict[int, Node] | None = None,
        waits: list[int] | None = None,
    ) -> None:
        self.nodes = nodes
        self.waits = waits if waits is not None else [len(node.deps) for node in nodes]
        self.roots = roots if roots is not None else {id(node.lazy) for node in nodes}
        self.cached = cached or []  # the nodes whose task has a cache (with_cache)
        self.by_lazy = {id(n.lazy): n for n in nodes}
        self.same: dict[int, int] = {}
        if twins:
            self.by_lazy.update(twins)
            self.same = {twin: id(node.lazy) for twin, node in twins.items()}
            self.roots |= {self.same.get(root, root) for root in self.roots}
        self.params = params or {}
        self.resources = resources or {}
        self.executors = executors or {}
        self.routing = routing(nodes, self.by_lazy, self.roots) if routed else None

    def bind(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Every parameter's value (``given``, else its default); :class:`ParamError`
        naming a parameter missing, unknown or ill-typed, or a router's selector parameter
        bound to no route's key."""
        values = bind_params(self.params, given or {})
        if not values:  # no Param: no router's selector is one
            return values
        for node in self.nodes:
            for router in node.routers:
                selector = router.selector
                if not isinstance(selector, Param):
                    continue
                try:
                    router.route(values[selector.name])
                except RouteMissing:
                    keys = ", ".join(repr(k) for k in router.routes)
                    raise ParamError(
                        f"parameter {selector.name} must be one of {keys} (a router's routes), "
                        f"not {values[selector.name]!r}: no matching route found"
                    ) from None
        return values


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
    order, nodes, twins = _ordered(roots)
    return _wired(roots, order, nodes, twins)


def _ordered(
    roots: list[LazyResult[Any]],
) -> tuple[list[Node], dict[int, Node], dict[int, Node]]:
    """The nodes of the calls ``roots`` need, each after those it needs (a pure task's equal
    calls one node: ``twins``, by id of the call); :class:`CycleError` on a cycle."""
    nodes: dict[int, Node] = {}
    order: list[Node] = []
    pure: dict[bytes, Node] = {}  # a pure task's calls by what they are
    twins: dict[int, Node] = {}
    # Iterative DFS with colours: 1 = on the current path, 2 = done.
    colour: dict[int, int] = {}
    for root in roots:
        if colour.get(id(root)) == 2:
            continue
        upstream = _scan(root)[0]
        if not upstream and not root.task.pure:  # a call that needs no other (a fan-out's)
            colour[id(root)] = 2
            node = nodes[id(root)] = Node(root, len(order))
            order.append(node)
            continue
        stack: list[tuple[LazyResult[Any], Iterator[LazyResult[Any]]]] = [(root, iter(upstream))]
        colour[id(root)] = 1
        while stack:
            lazy, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                colour[id(lazy)] = 2
                key = _pure_key(lazy, nodes) if lazy.task.pure else None
                if key is not None:
                    known = pure.get(key)
                    if known is not None:
                        nodes[id(lazy)] = twins[id(lazy)] = known
                        continue
                node = Node(lazy, len(order))
                nodes[id(lazy)] = node
                order.append(node)
                if key is not None:
                    pure[key] = node
                continue
            state = colour.get(id(dep))
            if state == 1:
                path = [entry[0].task_id for entry in stack]
                cycle = [*path[path.index(dep.task_id) :], dep.task_id]
                raise CycleError(cycle)
            if state is None:
                colour[id(dep)] = 1
                stack.append((dep, iter(_scan(dep)[0])))
    return order, nodes, twins


def _wired(
    roots: list[LazyResult[Any]],
    order: list[Node],
    nodes: dict[int, Node],
    twins: dict[int, Node],
) -> Graph:
    """The graph of ``order``'s nodes: each one's dependencies and dependents, and what the
    graph asks of its runs (params, resources, executors, caches, routers, the policies of the
    nodes whose calls have features)."""
    params: dict[str, Param[Any]] = {}
    resources: dict[str, Node] = {}
    executors: dict[str, Node] = {}
    cached: list[Node] = []
    waits = [0] * len(order)
    routed = False  # a task takes a router
    featured: dict[int, Node] = {}  # the nodes whose call has a feature its run asks of
    for node in order:
        lazy = node.lazy
        # scanned again: keeping 10,000s of scans alive costs the GC more than a second scan
        found = _scan(lazy)
        spec = lazy.task
        if found is _NOTHING and not spec.special and type(lazy) is LazyResult:
            continue  # depends on nothing, guarded by nothing: as made
        upstream, found_params, found_routers, found_injects = found
        for dep in upstream:
            parent = nodes[id(dep)]
            if twins and parent in node.deps:  # two twins of one pure call: one dependency
                continue
            node.deps.append(parent)
            parent.dependents.append(node)
        waits[node.index] = len(node.deps)
        for param in found_params:
            _add_param(params, param)
        node.binds = bool(found_params)
        if found_injects or spec.special:
            if found_injects or spec.injects:
                _add_resources(resources, node, found_injects)
            if spec.executor is not None:
                executors.setdefault(spec.executor, node)
            if spec.cache is not None:
                cached.append(node)
        if found_routers:
            node.routers = tuple(found_routers)
            routed = True
        if lazy.jumps is not None:  # its routes' tasks run as its iterations: the loop's
            for route in lazy.jumps.routes.values():
                if route is not None:
                    for default in route.task.injects:
                        if not default.given(route.args, route.kwargs):
                            resources.setdefault(default.resource, node)
        if (
            found_routers
            or lazy.condition is not ALWAYS
            or type(lazy) is MappedLazyResult
            or (spec.special and spec.awaits_approval)
            or lazy.jumps is not None
        ):
            featured[id(node)] = node
    graph = Graph(
        order, params, resources, cached, executors, {id(r) for r in roots}, routed, twins, waits
    )
    if graph.routing is not None:
        featured.update((id(node), node) for node in graph.routing.routed)  # it waits to be wanted
    if featured:
        assign(featured.values(), graph.routing)
    return graph


def _pure_key(lazy: LazyResult[Any], nodes: dict[int, Node]) -> bytes | None:
    """What a call of a pure task is, as bytes equal for two calls exactly when they are one
    node: its task (the same object: same function and options), the canonical encoding of
    its arguments, its condition, the amounts it asks for and what it runs after, a lazy
    result among them as the node it is. ``None``: a map, or a value without a canonical
    encoding (the call is its own node)."""
    if type(lazy) is not LazyResult:
        return None

    def upstream(value: Any) -> Any:
        if isinstance(value, Param):
            return ["p", value.name]
        return ["n", id(nodes[id(value)])]

    try:
        return encode(
            [
                id(lazy.task),
                [canonical(arg, upstream) for arg in lazy.args],
                canonical(lazy.kwargs, upstream),
                canonical(lazy.condition, upstream),
                canonical(list(lazy.resources or ()), upstream),
                sorted(id(nodes[id(before)]) for before in lazy.order),
            ]
        )
    except (NotCanonical, RecursionError, TypeError, ValueError, OverflowError):
        return None


def _add_resources(resources: dict[str, Node], node: Node, passed: Sequence[Inject]) -> None:
    """Note the resources ``node`` injects: those ``passed`` where it was called, and its task's
    inject defaults that the call gives no value."""
    lazy = node.lazy
    names = [marker.name for marker in passed]
    names += [d.resource for d in lazy.task.injects if not d.given(lazy.args, lazy.kwargs)]
    for name in names:
        resources.setdefault(name, node)
    node.injects = bool(names)  # every inject default given a value: nothing to inject


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
