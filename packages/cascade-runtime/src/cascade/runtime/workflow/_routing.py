"""Which tasks a run needs, its routers' choices known: the documented meaning of :class:`Router`.

A task runs where the run's target needs it: a task of the target, a task a needed task takes
(as an argument, its condition, a router's selector, an amount of a resource) or runs after
(:meth:`~cascade.runtime.LazyResult.after`), or the route a
needed task's router chooses. A task no needed task takes but as a route its router did not
choose ends ``SKIPPED`` ``not routed``, without running, and what waits on it goes on.

:class:`Routing` is what the graph says of it, found once when the graph is built; where a task
is needed only through routes (it is *routed*), whether it runs is known only once the
selectors are: :class:`Demand` decides it as the run goes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ._param import Param
from ._router import RouteMissing, Router
from ._task import ALWAYS, LazyResult, Unmapped

if TYPE_CHECKING:
    from ._node import Node


class RoutingState(Protocol):
    """What routing reads of a run's state (:class:`~._run_state.RunState`), and decides in
    it (``wanted``): each lazy result's node, the params' values, each node's by its index."""

    by_lazy: dict[int, Node]
    values: dict[str, Any]
    done: list[bool]
    failed: list[bool]
    skipped: list[bool]
    result: list[Any]
    wanted: list[bool | None]


__all__ = ["Demand", "Routing", "routing"]

Path = tuple[tuple[Router[Any], Any], ...]
"""The routes through which a task takes a value: (router, key) from the outermost router in."""

_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})
_PENDING = object()  # a selector whose value is not known yet
_NONE = object()  # a selector that gives no value: its task failed or was skipped


def _taken(
    value: Any, path: Path, out: list[tuple[int, Path]], routers: list[tuple[Router[Any], Path]]
) -> None:
    """Note in ``out`` each lazy result in ``value`` (any depth) with the routes it is taken
    through: a router's selector through ``path``, each route through ``path`` and its key;
    and in ``routers`` each router with the routes it is taken through."""
    stack: list[tuple[Any, Path]] = [(value, path)]
    seen: set[tuple[int, Path]] = set()
    while stack:
        value, path = stack.pop()
        if type(value) in _PLAIN or isinstance(value, Param):
            continue
        if isinstance(value, LazyResult):
            out.append((id(value), path))
        elif isinstance(value, (list, tuple, set, frozenset, dict)):
            if (id(value), path) not in seen:  # a container that holds itself
                seen.add((id(value), path))
                items = value.values() if isinstance(value, dict) else value
                stack.extend((item, path) for item in items)
        elif isinstance(value, Router):
            routers.append((value, path))
            stack.append((value.selector, path))
            stack.extend((branch, (*path, (value, key))) for key, branch in value.routes.items())
        elif isinstance(value, Unmapped):
            stack.append((value.value, path))


class Routing:
    """What a graph with routers says of which tasks it needs.

    ``takes``: for each task that takes a router, what it takes and through which routes (an
    empty :data:`Path`: whatever the routers choose), and ``reaches``: the routers it takes,
    each with the routes it takes it through. ``claims``: for each routed task (one
    the target needs only through routes), the tasks that take it and through which routes.
    ``watchers``: for each lazy selector, the routed tasks its value may decide.
    ``claimed``: for each task, the routed tasks it takes (decided once it is).
    ``consumers``: the tasks that take a router.
    ``deciding``: for each lazy selector, the tasks that take a router it decides (which of
    their tasks taken through routes they need, :meth:`needless`, is known once it ends).
    """

    def __init__(self, graph_nodes: list[Node], by_lazy: dict[int, Node], roots: set[int]):
        self.takes: dict[int, list[tuple[Node, Path]]] = {}
        self.reaches: dict[int, list[tuple[Router[Any], Path]]] = {}
        self.deciding: dict[int, list[Node]] = {}
        self.consumers = [node for node in graph_nodes if node.routers]
        for node in self.consumers:
            found: list[tuple[int, Path]] = []
            routers: list[tuple[Router[Any], Path]] = []
            lazy = node.lazy
            _taken([lazy.args, lazy.kwargs], (), found, routers)
            if lazy.condition is not ALWAYS:
                _taken(lazy.condition, (), found, routers)
            if lazy.resources is not None:
                _taken(lazy.resources, (), found, routers)
            if lazy.order:
                _taken(lazy.order, (), found, routers)
            self.takes[id(node)] = [(by_lazy[key], path) for key, path in dict.fromkeys(found)]
            self.reaches[id(node)] = routers
            for router, _ in routers:
                for selector in _lazies_of(router.selector):
                    deciding = self.deciding.setdefault(id(by_lazy[id(selector)]), [])
                    if not deciding or deciding[-1] is not node:
                        deciding.append(node)
        needed = self._needed_whatever_is_chosen(graph_nodes, by_lazy, roots)
        self.claims: dict[int, list[tuple[Node, Path]]] = {}
        self.claimed: dict[int, list[Node]] = {}
        self.watchers: dict[int, list[Node]] = {}
        for consumer in graph_nodes:
            for dep, path in self._taken_by(consumer):
                if id(dep) in needed:
                    continue
                self.claims.setdefault(id(dep), []).append((consumer, path))
                self.claimed.setdefault(id(consumer), []).append(dep)
                for router, _ in path:
                    selector = router.selector
                    if isinstance(selector, LazyResult):
                        watching = self.watchers.setdefault(id(by_lazy[id(selector)]), [])
                        if not watching or watching[-1] is not dep:
                            watching.append(dep)
        self.routed = [node for node in graph_nodes if id(node) in self.claims]

    def _taken_by(self, consumer: Node) -> Iterator[tuple[Node, Path]]:
        found = self.takes.get(id(consumer))
        if found is not None:
            return iter(found)
        return ((dep, ()) for dep in consumer.deps)

    def _needed_whatever_is_chosen(
        self, graph_nodes: list[Node], by_lazy: dict[int, Node], roots: set[int]
    ) -> set[int]:
        """The ids of the nodes the target needs through no route: they always run."""
        stack = [by_lazy[root] for root in roots]
        needed = {id(node) for node in stack}
        while stack:
            node = stack.pop()
            for dep, path in self._taken_by(node):
                if not path and id(dep) not in needed:
                    needed.add(id(dep))
                    stack.append(dep)
        return needed

    def needs(self, consumer: Node, dep: Node, state: RoutingState) -> bool:
        """Whether ``consumer`` needs ``dep``'s result, its routers' selectors known: it takes
        it other than as a route, or as a route its router chose (or ``dep`` is its map's item)."""
        found = self.takes.get(id(consumer))
        if found is None or dep.item_of is not None:
            return True
        return any(node is dep and _path_holds(path, state) is True for node, path in found)

    def needless(self, consumer: Node, state: RoutingState) -> list[Node]:
        """The tasks ``consumer`` (a task that takes a router) takes only through routes its
        routers did not choose: it needs none of them, whatever else chooses them."""
        holds: dict[int, bool] = {}
        for dep, path in self.takes[id(consumer)]:
            if dep.item_of is None and holds.get(id(dep)) is not True:
                holds[id(dep)] = _path_holds(path, state) is not False
        return [dep for dep in consumer.deps if holds.get(id(dep)) is False]

    def missing_route(self, consumer: Node, state: RoutingState) -> RouteMissing | None:
        """The :class:`RouteMissing` of a router ``consumer`` takes through chosen routes whose
        selector is no key of its routes, if one is (its selectors known)."""
        for router, path in self.reaches[id(consumer)]:
            if _path_holds(path, state) is True and _chosen(router, state) is _NONE:
                try:
                    router.route(_value(router.selector, state))
                except RouteMissing as exc:
                    return exc
        return None

    def deciders(self, node: Node, by_lazy: dict[int, Node]) -> list[Node]:
        """The lazy selectors whose values decide whether routed ``node`` runs."""
        found: dict[int, Node] = {}
        stack, seen = [node], {id(node)}
        while stack:
            for consumer, path in self.claims.get(id(stack.pop()), ()):
                for router, _ in path:
                    if isinstance(router.selector, LazyResult):
                        selector = by_lazy[id(router.selector)]
                        found[id(selector)] = selector
                if id(consumer) in self.claims and id(consumer) not in seen:
                    seen.add(id(consumer))
                    stack.append(consumer)
        return list(found.values())


def routing(graph_nodes: list[Node], by_lazy: dict[int, Node], roots: set[int]) -> Routing | None:
    """The graph's :class:`Routing`, if a task of it takes a router; its routed nodes start
    each run undecided (``wanted`` ``None``, :class:`~._run_state.RunState`)."""
    if not any(node.routers for node in graph_nodes):
        return None
    return Routing(graph_nodes, by_lazy, roots)


def _lazies_of(selector: Any) -> list[LazyResult[Any]]:
    """The lazy results a selector's value comes from (a router as a selector: its selector's
    and its routes')."""
    found: list[LazyResult[Any]] = []
    stack = [selector]
    while stack:
        value = stack.pop()
        if isinstance(value, LazyResult):
            found.append(value)
        elif isinstance(value, Router):
            stack.append(value.selector)
            stack.extend(value.routes.values())
    return found


def _chosen(router: Router[Any], state: RoutingState) -> Any:
    """The key ``router``'s selector chose; :data:`_PENDING` while it is not known, and
    :data:`_NONE` where it gives none (its task ended without a result, or no route has it)."""
    value = _value(router.selector, state)
    if value is _PENDING or value is _NONE:
        return value
    try:
        if value in router.routes:
            return value
    except TypeError:  # unhashable: no key
        pass
    return _NONE


def _value(value: Any, state: RoutingState) -> Any:
    """A selector's value; :data:`_PENDING` or :data:`_NONE` as :func:`_chosen` says them."""
    if isinstance(value, LazyResult):
        at = state.by_lazy[id(value)].index
        if not state.done[at]:
            return _PENDING
        return _NONE if state.skipped[at] or state.failed[at] else state.result[at]
    if isinstance(value, Param):
        return state.values[value.name]
    if isinstance(value, Router):
        key = _chosen(value, state)
        return key if key is _PENDING or key is _NONE else _value(value.routes[key], state)
    return value


def _path_holds(path: Path, state: RoutingState) -> bool | None:
    """Whether every router of ``path`` chose its key: ``None`` while one is not known."""
    known: bool | None = True
    for router, key in path:
        choice = _chosen(router, state)
        if choice is _PENDING:
            known = None
        elif choice is _NONE or choice != key:
            return False
    return known


class Demand:
    """Decides, as a run goes, whether each routed task runs: it is *wanted* once a task that
    is wanted takes it through routes that were all chosen, and not once no such task is left.

    ``wanted(node)`` and ``unwanted(node)`` are the run's to act on (start it where it waits,
    end it ``not routed``), and (where given) ``needless(consumer, dep)``: a task that takes a
    router need not wait for ``dep``, taken only through routes not chosen (which another
    router may still choose: waiting for it could wait for the consumer itself).
    :meth:`ended` tells it a task ended (a selector's value known).
    """

    def __init__(
        self,
        found: Routing,
        state: RoutingState,
        wanted: Callable[[Node], None],
        unwanted: Callable[[Node], None],
        needless: Callable[[Node, Node], None] | None = None,
    ) -> None:
        self.routing = found
        self.state = state
        self._wanted = wanted
        self._unwanted = unwanted
        self._needless = needless
        self._queue: deque[Node] = deque()
        self._settling = False

    def start(self) -> None:
        """Decide what can be from the start (the params known), consumers first."""
        self._queue.extend(reversed(self.routing.routed))
        self._settle()
        for consumer in self.routing.consumers:  # what params' routers did not choose
            self._let_go(consumer)

    def ended(self, node: Node) -> None:
        """``node`` ended: decide the routed tasks its value may decide."""
        watching = self.routing.watchers.get(id(node))
        if watching:
            self._queue.extend(watching)
            self._settle()
        for consumer in self.routing.deciding.get(id(node), ()):
            self._let_go(consumer)

    def waits_out(self, node: Node) -> bool:
        """Whether ``node``, a task that takes a router or one whether the run needs is not
        known yet, only stops waiting for a task it takes that ended without a result: it may
        not need that task, and hears of it once ready."""
        return bool(node.routers) or self.state.wanted[node.index] is None

    def _let_go(self, consumer: Node) -> None:
        done = self.state.done
        if self._needless is not None and not done[consumer.index]:
            for dep in self.routing.needless(consumer, self.state):
                if not done[dep.index]:
                    self._needless(consumer, dep)

    def _settle(self) -> None:
        if self._settling:  # deciding one ended another: the loop below goes on with it
            return
        self._settling = True
        try:
            queue, wanted = self._queue, self.state.wanted
            while queue:
                node = queue.popleft()
                if wanted[node.index] is not None:
                    continue
                decided = self._decide(node)
                if decided is None:
                    continue
                wanted[node.index] = decided
                queue.extend(self.routing.claimed.get(id(node), ()))
                (self._wanted if decided else self._unwanted)(node)
        finally:
            self._settling = False

    def _decide(self, node: Node) -> bool | None:
        known: bool | None = False
        wanted = self.state.wanted
        for consumer, path in self.routing.claims[id(node)]:
            if wanted[consumer.index] is False:
                continue
            holds = _path_holds(path, self.state)
            if holds is False:
                continue
            if holds and wanted[consumer.index]:
                return True
            known = None
        return known
