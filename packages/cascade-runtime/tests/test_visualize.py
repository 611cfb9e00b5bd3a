"""``visualize``: a target's graph as Graphviz DOT or text, each dependency drawn as what it
is (data and the argument that takes it, a condition, order only, a map); nothing runs."""

from __future__ import annotations

import pytest

import cascade.runtime as cs
from cascade.runtime import task

ran: list[str] = []


@task
def t_a() -> int:
    ran.append("t_a")
    return 1


@task
def t_b(x: int) -> int:
    return x + 1


@task
def t_d(y: int, z: list[int]) -> int:
    return y + sum(z)


def test_a_diamond_as_dot() -> None:
    """A box per task, an edge per dependency labelled with its argument; nothing runs."""
    a = t_a()
    b = t_b(a)
    c = t_b(a)
    d = t_d(b, z=[c, 3])
    dot = cs.visualize(d)
    assert dot.startswith("digraph CascadeWorkflow {\n")
    assert dot.endswith("}")
    assert 'rankdir="TB"' in dot
    assert f'"{a.task_id}" [label="t_a\\n(task)", shape=box];' in dot
    assert f'"{a.task_id}" -> "{b.task_id}" [label="0"];' in dot
    assert f'"{b.task_id}" -> "{d.task_id}" [label="0"];' in dot
    assert f'"{c.task_id}" -> "{d.task_id}" [label="z"];' in dot
    assert dot.count(" -> ") == 4
    assert ran == []


def test_conditions_order_and_maps_are_drawn_as_what_they_are() -> None:
    """A condition is dashed, an ``after`` dotted, a map's box says ``map``; text lists them."""
    gate = t_a()
    first = t_b(1)
    guarded = t_b(2).run_if(gate).after(first)
    mapped = t_b.map(x=[1, 2])
    dot = cs.visualize([guarded, mapped])
    assert f'"{gate.task_id}" -> "{guarded.task_id}" [label="condition", style=dashed];' in dot
    assert f'"{first.task_id}" -> "{guarded.task_id}" [label="after", style=dotted];' in dot
    assert f'"{mapped.task_id}" [label="t_b\\n(map)", shape=box];' in dot
    text = cs.visualize([guarded, mapped], format="text")
    line = f"{guarded.task_id} [task t_b] <- "
    assert f"{line}{first.task_id} (after), {gate.task_id} (condition)" in text.splitlines()
    assert f"{mapped.task_id} [map t_b]" in text.splitlines()
    with pytest.raises(ValueError, match="'png'"):
        cs.visualize(guarded, format="png")  # type: ignore[arg-type]
