"""Generated workflows: a plan (plain data a reference can read), its hypothesis strategy, and the
real graph of ``@task`` lazy results it builds.

The task bodies live here, at the top level of a module on ``sys.path``, so that worker processes
(``ProcessExecutor``, spawned) import them by name. A body fails by its attempt number, which
``current_task()`` gives in a worker too, so nothing in it depends on the process's memory.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from cascade.runtime import (
    Jump,
    Param,
    Router,
    bind,
    current_task,
    select_jump,
    sequence,
    task,
    unmapped,
)

ALWAYS = 99
"""``failures`` of a body that fails every attempt."""

DECIDED = [500]
"""The result a ``complete`` decision gives a held task."""

KEY_PARAMS = {"p0": "x", "p1": "y"}
"""The parameters that select routes: their defaults (each takes ``"x"`` or ``"y"``)."""
FLAG_PARAMS = {"c0": False, "c1": True}
"""The parameters that are conditions: their defaults."""


STARTS: dict[tuple[str, int], float] = {}
"""When each attempt's body started (``time.time()``), by task id and attempt: where the bodies
run in this process (threads), what the engine's ``RUNNING`` is compared with."""
WORK = [0.0]
"""Seconds each body works before it returns (0: none), where a test asks (threads only)."""


def started() -> Any:
    """The attempt's ``current_task()``, its start recorded (:data:`STARTS`)."""
    context = current_task()
    assert context is not None
    STARTS[(context.task_id, context.attempt)] = time.time()
    if WORK[0]:
        time.sleep(WORK[0])  # the body's work: a queue forms behind it
    return context


class Failure(Exception):
    """What a generated body raises on an attempt the plan says fails."""


@dataclass(frozen=True)
class NodeRef:
    """The result of the plan's node ``index``."""

    index: int


@dataclass(frozen=True)
class ParamRef:
    """The value of the parameter ``name``."""

    name: str


@dataclass(frozen=True)
class Const:
    """A plain value."""

    value: Any


@dataclass(frozen=True)
class RouterRef:
    """``Router(selector, routes)``; a route may be a router itself."""

    selector: NodeRef | ParamRef
    routes: tuple[tuple[str, Ref], ...]


Ref = NodeRef | ParamRef | Const | RouterRef


@dataclass(frozen=True)
class Call:
    """One call of a task: its arguments, the attempts that fail before one succeeds
    (``ALWAYS``: every one), ``with_retry(attempts)``, a ``run_if`` condition, ``with_cache()``,
    and under ``on_failure="hold"`` the decisions taken on each hold, in order (``()``: no hold),
    and the earlier nodes it runs ``after`` (order only). Its result is a list of ``width``
    numbers computed from its label and arguments; not ``kept``, a tuple of them (a tuple has
    no msgpack form that decodes back equal: a store never keeps it, a rerun runs it again
    where a task it runs needs it)."""

    label: str
    args: tuple[Ref, ...]
    width: int
    failures: int = 0
    attempts: int = 1
    condition: NodeRef | ParamRef | None = None
    cache: bool = False
    decisions: tuple[str, ...] = ()
    after: tuple[int, ...] = ()
    kept: bool = True


@dataclass(frozen=True)
class Choice:
    """A task that returns ``value`` (a route's key or a condition), or fails; run ``after``
    the earlier nodes it names."""

    label: str
    value: str | bool
    fails: bool = False
    after: tuple[int, ...] = ()


@dataclass(frozen=True)
class Map:
    """``task.map(x=over)``: over a list given or an upstream node's list. With ``failing``,
    an item whose value is a multiple of 3 fails every attempt; ``attempts`` is each item's
    ``with_retry``; ``condition`` the map's ``run_if``; ``after`` the earlier nodes it runs
    after (order only)."""

    label: str
    over: Const | NodeRef
    failing: bool = False
    attempts: int = 1
    condition: NodeRef | ParamRef | None = None
    after: tuple[int, ...] = ()


@dataclass(frozen=True)
class Loop:
    """A loop: a call of a task bound to ``select_jump({"again": itself, "done": None})``,
    taking ``args`` as a :class:`Call` does. It runs ``steps`` steps (its call, then each
    iteration): each but the last jumps ``"again"`` with the next step's number; the last
    returns a list of ``width`` numbers of its label, arguments and ``steps``, or with
    ``exits`` jumps ``"done"`` with it. Step ``failing`` (0: none) fails its first
    ``failures`` attempts (``ALWAYS``: every one); ``attempts`` is the call's ``with_retry``
    (every iteration's too), ``condition`` its ``run_if``, ``after`` as a call's."""

    label: str
    args: tuple[Ref, ...]
    width: int
    steps: int
    exits: bool = False
    failing: int = 0
    failures: int = 0
    attempts: int = 1
    condition: NodeRef | ParamRef | None = None
    after: tuple[int, ...] = ()


Node = Call | Choice | Map | Loop


@dataclass(frozen=True)
class Plan:
    """A workflow: its nodes (each refers only to nodes before it), the parameters given to
    the run, the nodes the run's target lists, and ``sequences``: runs of nodes (in increasing
    order) made one after the other by ``sequence``."""

    nodes: tuple[Node, ...]
    params: tuple[tuple[str, Any], ...]
    target: tuple[int, ...]
    sequences: tuple[tuple[int, ...], ...] = ()

    def order(self, index: int) -> tuple[int, ...]:
        """The nodes node ``index`` runs after only for their order: its own ``after``, and
        the node before it in each sequence that has it."""
        found = list(self.nodes[index].after)
        for chain in self.sequences:
            if index in chain and chain.index(index) > 0:
                found.append(chain[chain.index(index) - 1])
        return tuple(dict.fromkeys(found))


def reached(plan: Plan) -> set[int]:
    """The nodes of the run's graph: every node the target reaches by any reference, the routes
    not chosen too."""
    seen: set[int] = set()

    def visit(ref: Ref | None) -> None:
        if isinstance(ref, NodeRef) and ref.index not in seen:
            seen.add(ref.index)
            for inner in references(plan.nodes[ref.index]):
                visit(inner)
            for before in plan.order(ref.index):
                visit(NodeRef(before))
        elif isinstance(ref, RouterRef):
            visit(ref.selector)
            for _, route in ref.routes:
                visit(route)

    for index in plan.target:
        visit(NodeRef(index))
    return seen


def references(node: Node) -> Iterator[Ref]:
    """What a node refers to: its arguments, its condition, what it maps over."""
    if isinstance(node, Call | Loop):
        yield from node.args
    if isinstance(node, Map):
        yield node.over
    if not isinstance(node, Choice) and node.condition is not None:
        yield node.condition


def parameters(plan: Plan) -> set[str]:
    """The names of the parameters the run's graph has."""
    names: set[str] = set()

    def visit(ref: Ref | None) -> None:
        if isinstance(ref, ParamRef):
            names.add(ref.name)
        elif isinstance(ref, RouterRef):
            visit(ref.selector)
            for _, route in ref.routes:
                visit(route)

    for index in reached(plan):
        for ref in references(plan.nodes[index]):
            visit(ref)
    return names


def number(*parts: Any) -> int:
    """A stable number of ``parts`` (their repr), 0 to 999."""
    return zlib.crc32(repr(parts).encode()) % 1000


def call_body(label: str, width: int, failures: int, *args: Any) -> list[int]:
    """A generated call: fails its first ``failures`` attempts, then returns ``width`` numbers
    of its label and arguments."""
    context = started()
    if context.attempt <= failures:
        raise Failure(f"{label} fails attempt {context.attempt}")
    return [number(label, args, k) for k in range(width)]


def unkept_body(label: str, width: int, failures: int, *args: Any) -> tuple[int, ...]:
    """A generated call whose result is not kept: :func:`call_body`'s numbers, as a tuple."""
    return tuple(call_body(label, width, failures, *args))


def choice_body(label: str, value: str | bool, fails: bool) -> str | bool:
    """A generated choice: ``value``, or a failure."""
    started()
    if fails:
        raise Failure(f"{label} fails")
    return value


def item_body(label: str, failing: bool, x: int) -> int:
    """One item of a generated map: fails (every attempt) for a multiple of 3 when
    ``failing``, else a number of its label and value."""
    started()
    if failing and x % 3 == 0:
        raise Failure(f"{label} fails at {x}")
    return number(label, x)


def loop_value(label: str, width: int, steps: int, args: tuple[Any, ...]) -> list[int]:
    """What a generated loop of ``steps`` steps on ``args`` ends with."""
    return [number(label, args, steps, k) for k in range(width)]


def loop_body(
    label: str,
    width: int,
    steps: int,
    exits: bool,
    failing: int,
    failures: int,
    step: int,
    *args: Any,
) -> Any:
    """A step of a generated loop: step ``failing`` fails its first ``failures`` attempts;
    a step before the last jumps to the next (its number the jump's data), the last ends the
    loop with its value (returned, or with ``exits`` as the data of a jump to ``None``)."""
    context = started()
    if step == failing and context.attempt <= failures:
        raise Failure(f"{label} fails step {step} attempt {context.attempt}")
    if step < steps:
        return Jump("again", {"step": step + 1})
    value = loop_value(label, width, steps, args)
    return Jump("done", value) if exits else value


def build(plan: Plan) -> list[Any]:
    """The plan's target: a list of the lazy results of its target nodes."""
    built: list[Any] = []

    def value(ref: Ref) -> Any:
        if isinstance(ref, NodeRef):
            return built[ref.index]
        if isinstance(ref, ParamRef):
            return param(ref.name)
        if isinstance(ref, Const):
            return ref.value
        return Router(value(ref.selector), {key: value(route) for key, route in ref.routes})

    for node in plan.nodes:
        lazy: Any
        if isinstance(node, Call):
            body = task(name=node.label, on_failure="hold" if node.decisions else "fail")(
                call_body if node.kept else unkept_body
            )
            lazy = body(node.label, node.width, node.failures, *(value(a) for a in node.args))
            if node.attempts > 1:
                lazy = lazy.with_retry(node.attempts)
            if node.cache:
                lazy = lazy.with_cache()
        elif isinstance(node, Loop):
            step = task(name=node.label)(loop_body)
            fixed = (node.label, node.width, node.steps, node.exits, node.failing, node.failures)
            lazy = step(*fixed, 1, *(value(a) for a in node.args))
            bind(lazy, select_jump({"again": lazy, "done": None}))
            if node.attempts > 1:
                lazy = lazy.with_retry(node.attempts)
        elif isinstance(node, Choice):
            lazy = task(name=node.label)(choice_body)(node.label, node.value, node.fails)
        else:
            item = task(name=node.label)(item_body)
            if node.attempts > 1:
                item = item.with_retry(node.attempts)
            lazy = item.map(
                x=value(node.over), label=unmapped(node.label), failing=unmapped(node.failing)
            )
        if not isinstance(node, Choice) and node.condition is not None:
            lazy = lazy.run_if(value(node.condition))
        if node.after:
            lazy = lazy.after(*(built[i] for i in node.after))
        built.append(lazy)
    for chain in plan.sequences:
        sequence([built[i] for i in chain])
    return [built[i] for i in plan.target]


def param(name: str) -> Param[Any]:
    """The generated parameter ``name`` with its default."""
    return Param(name, default={**KEY_PARAMS, **FLAG_PARAMS}[name])


@st.composite
def plans(
    draw: st.DrawFn,
    *,
    max_nodes: int = 24,
    holds: bool = True,
    caches: bool = False,
    loops: bool = True,
    unkept: bool = False,
) -> Plan:
    """A random plan of up to ``max_nodes`` nodes mixing calls, choices, maps, loops,
    conditions, routers (nested, shared by several consumers), order-only dependencies and
    sequences, failures, retries and holds; with ``unkept``, calls whose results are not kept
    (tuples), taken as arguments by calls and loops."""
    size = draw(st.integers(1, max_nodes))
    nodes: list[Node] = []
    kinds: list[str] = []  # "list" (a call's or map's), "key" or "flag" (a choice's)

    def pick(kind: str) -> NodeRef | None:
        indices = [i for i, k in enumerate(kinds) if k == kind]
        return NodeRef(draw(st.sampled_from(indices))) if indices else None

    def selector() -> NodeRef | ParamRef:
        lazy = pick("key")
        if lazy is not None and draw(st.booleans()):
            return lazy
        return ParamRef(draw(st.sampled_from(sorted(KEY_PARAMS))))

    def route(depth: int) -> Ref:
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            return router(depth + 1)
        lazy = pick("list")
        if lazy is None or draw(st.integers(0, 5)) == 0:
            return Const([draw(st.integers(0, 9))])
        return lazy

    def router(depth: int) -> RouterRef:
        chosen_by = selector()
        shapes = [("x", "y"), ("x", "y", "z")]
        if isinstance(chosen_by, NodeRef):  # a Param's value no key fails the run at its start
            shapes += [("x",), ("y", "z")]
        keys = draw(st.sampled_from(shapes))
        return RouterRef(chosen_by, tuple((key, route(depth)) for key in keys))

    def argument() -> Ref:
        roll = draw(st.integers(0, 9))
        if roll <= 2 and kinds:
            return router(0)
        if roll == 3:
            return ParamRef(draw(st.sampled_from(sorted(KEY_PARAMS))))
        if roll == 4:
            return Const(draw(st.integers(0, 9)))
        if unkept and roll >= 7 and (made := pick("tuple")) is not None:
            return made
        return pick("list") or Const(draw(st.integers(0, 9)))

    def condition() -> NodeRef | ParamRef | None:
        roll = draw(st.integers(0, 5))
        if roll == 0:
            return ParamRef(draw(st.sampled_from(sorted(FLAG_PARAMS))))
        if roll == 1:
            return pick("flag")
        return None

    def after(index: int) -> tuple[int, ...]:
        if index == 0 or draw(st.integers(0, 3)) != 0:
            return ()
        earlier = st.integers(0, index - 1)
        return tuple(sorted(draw(st.sets(earlier, min_size=1, max_size=2))))

    for index in range(size):
        label = f"n{index}"
        roll = draw(st.integers(0, 11 if loops else 9))
        if roll >= 10:
            steps = draw(st.integers(1, 4))
            failing = draw(st.sampled_from([0, 0, 0, *range(1, steps + 1)]))
            nodes.append(
                Loop(
                    label,
                    tuple(argument() for _ in range(draw(st.integers(0, 3)))),
                    width=draw(st.integers(0, 3)),
                    steps=steps,
                    exits=draw(st.booleans()),
                    failing=failing,
                    failures=draw(st.sampled_from([1, 2, ALWAYS])) if failing else 0,
                    attempts=draw(st.sampled_from([1, 1, 2, 3])),
                    condition=condition(),
                    after=after(index),
                )
            )
            kinds.append("list")
        elif roll <= 1:
            values: list[str | bool] = ["x", "y", "x", "y", "z", True, False]
            value = draw(st.sampled_from(values))
            fails = draw(st.integers(0, 9)) == 0
            nodes.append(Choice(label, value, fails=fails, after=after(index)))
            kinds.append("flag" if isinstance(value, bool) else "key")
        elif roll <= 3:
            upstream = pick("list")
            over: Const | NodeRef
            if upstream is not None and draw(st.booleans()):
                over = upstream
            else:
                over = Const(draw(st.lists(st.integers(0, 20), max_size=3)))
            nodes.append(
                Map(
                    label,
                    over,
                    failing=draw(st.integers(0, 4)) == 0,
                    attempts=draw(st.sampled_from([1, 1, 2])),
                    condition=condition(),
                    after=after(index),
                )
            )
            kinds.append("list")
        else:
            failures = draw(st.sampled_from([0, 0, 0, 0, 1, 2, ALWAYS]))
            decisions: tuple[str, ...] = ()
            if holds and failures and draw(st.integers(0, 2)) == 0:
                retries = draw(st.integers(0, 2))
                last = draw(st.sampled_from(["skip", "fail", "complete"]))
                decisions = ("retry",) * retries + (last,)
            call = Call(
                label,
                tuple(argument() for _ in range(draw(st.integers(0, 3)))),
                width=draw(st.integers(0, 3)),
                failures=failures,
                attempts=draw(st.sampled_from([1, 1, 2, 3])),
                condition=condition(),
                cache=caches and draw(st.booleans()),
                decisions=decisions,
                after=after(index),
                kept=not (unkept and draw(st.integers(0, 2)) == 0),
            )
            nodes.append(call)
            kinds.append("list" if call.kept else "tuple")
    target = draw(
        st.lists(st.integers(0, size - 1), min_size=1, max_size=3, unique=True).map(
            lambda picked: tuple(sorted(picked, reverse=True))
        )
    )
    sequences: tuple[tuple[int, ...], ...] = ()
    chained = list(range(len(nodes)))
    if len(chained) > 1 and draw(st.integers(0, 2)) == 0:
        chains = st.sets(st.sampled_from(chained), min_size=2, max_size=4).map(sorted).map(tuple)
        sequences = tuple(draw(st.lists(chains, min_size=1, max_size=2)))
    given = draw(
        st.dictionaries(
            st.sampled_from(sorted({**KEY_PARAMS, **FLAG_PARAMS})),
            st.sampled_from(["x", "y"]),
            max_size=2,
        )
    )
    unparametrized = Plan(tuple(nodes), (), target, sequences)
    used = parameters(unparametrized)
    params = tuple(
        sorted(
            (name, value if name in KEY_PARAMS else value == "x")
            for name, value in given.items()
            if name in used
        )
    )
    return Plan(tuple(nodes), params, target, sequences)
