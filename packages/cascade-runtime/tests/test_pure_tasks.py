"""@task(pure=True): equal calls of a pure task are one node of the graph, run once."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.runtime import Engine, Param, TaskRunning, task, visualize
from cascade.runtime.testing import EventRecorder

ran: list[Any] = []


@task(pure=True)
def square(x: Any) -> Any:
    ran.append(x)
    return [x, x] if not isinstance(x, int) else x * x


@task(pure=True)
def pair(a: Any, b: Any = None) -> Any:
    return [a, b]


@task
def impure(x: Any) -> Any:
    return x


@task
def add(a: int, b: int) -> int:
    return a + b


def nodes(target: Any) -> list[str]:
    """The graph's nodes, a line each (visualize's text)."""
    return visualize(target, format="text").splitlines()


async def test_two_equal_calls_run_once_and_both_have_the_result() -> None:
    """square(3) twice, one taking the other's twin as upstream too: one run of it."""
    ran.clear()
    engine = Engine()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    one, two = square(3), square(3)
    assert await engine.run([add(one, two), one, two, square(4)]) == [18, 9, 9, 16]
    assert sorted(ran) == [3, 4]
    assert [e.task_name for e in recorder.events if isinstance(e, TaskRunning)].count("square") == 2


def test_impure_calls_are_each_their_own_node() -> None:
    """Without pure=True every call is a node, equal arguments or not."""
    assert len(nodes([impure(1), impure(1), impure(1)])) == 3


def test_equal_means_equal_encoding_not_python_equality() -> None:
    """1, 1.0 and True are three calls; {"a": 1, "b": 2} in either order is one; so are equal
    nested lists; keyword and position stay different calls."""
    assert len(nodes([square(1), square(1.0), square(True)])) == 3
    assert len(nodes([square({"a": 1, "b": 2}), square({"b": 2, "a": 1})])) == 1
    assert len(nodes([square([1, (2, "x")]), square([1, (2, "x")])])) == 1
    assert len(nodes([square([1, 2]), square((1, 2))])) == 2
    assert len(nodes([pair(1, b=2), pair(1, 2)])) == 2
    assert len(nodes([pair(1, b=2), pair(1, b=2)])) == 1


def test_a_value_without_a_canonical_encoding_makes_its_call_its_own_node() -> None:
    """An object of a class of one's own, the same object twice: two nodes."""
    thing = object()
    assert len(nodes([square(thing), square(thing)])) == 2


def test_upstream_condition_order_and_options_are_part_of_a_call() -> None:
    """Equal arguments on different upstream calls, conditions or task options: separate
    nodes; on twin upstream calls, one; a Param by its name."""
    assert len(nodes([square(impure(1)), square(impure(1))])) == 4
    assert len(nodes([square(square(2)), square(square(2))])) == 2
    assert len(nodes([square(1).run_if(False), square(1)])) == 2
    assert len(nodes([square(1), square.with_retry(2)(1)])) == 2
    assert len(nodes([square(1).after(impure(0)), square(1)])) == 3
    n: Param[int] = Param("n", default=1)
    assert len(nodes([square(n), square(n)])) == 1


# a reference: calls are equal when their task and their arguments are equal as typed trees
_scalars = (
    st.integers(-3, 3)
    | st.sampled_from([0.0, -0.0, 1.0, 1.5])
    | st.booleans()
    | st.none()
    | st.sampled_from(["", "a", "b"])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from(["k", "l"]), inner, max_size=2)
    ),
    max_leaves=4,
)


def _typed(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", tuple(_typed(v) for v in value))
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((_typed(k), _typed(v)) for k, v in value.items()))
    return (type(value).__name__, repr(value))


# a call: (which task, its argument: a value, or ("ref", an earlier call's index))
_plans = st.lists(
    st.tuples(
        st.sampled_from(["square", "impure"]), _values | st.integers(0, 7).map(lambda i: ("ref", i))
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=120, deadline=None)
@given(_plans)
def test_a_graph_of_pure_calls_has_one_node_per_distinct_call(plan: list[Any]) -> None:
    """Generated calls of a pure and an impure task, on values and on earlier calls: the graph
    has as many nodes as a plain reference counts distinct calls (impure ones all distinct)."""
    lazies: list[Any] = []
    classes: list[Any] = []
    distinct: set[Any] = set()
    for index, (name, arg) in enumerate(plan):
        ref = isinstance(arg, tuple) and len(arg) == 2 and arg[0] == "ref"
        if ref and arg[1] >= index:
            arg, ref = index, False  # no earlier call: a plain value
        given = lazies[arg[1]] if ref else arg
        typed = ("call", classes[arg[1]]) if ref else _typed(arg)
        key: Any = (name, typed) if name == "square" else ("impure", index)
        lazies.append((square if name == "square" else impure)(given))
        classes.append(key)
        distinct.add(key)
    assert len(nodes(lazies)) == len(distinct)


async def test_twins_upstream_of_a_kept_run_are_fingerprinted_as_the_one_run() -> None:
    """With a results store, a task taking two twins of a pure call is fingerprinted (its
    upstream found through the twin) and the run's result is right."""
    engine = Engine(results=f"memory://pure-{uuid.uuid4().hex}")
    assert await engine.run(add(square(2), square(2))) == 8
    assert await engine.run([add(square(2), square(2)).after(square(2))]) == [8]
