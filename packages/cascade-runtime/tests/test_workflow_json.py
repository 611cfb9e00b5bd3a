"""``to_json``/``from_json``: a workflow written as JSON and built again runs to the same
results; what JSON cannot carry is refused when written, naming the task; a bad document is
refused naming what is wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

import cascade.runtime as cs
from cascade.runtime import Engine, Param, inject, resource, task


@task
def add(x: int, y: int) -> int:
    return x + y


@task(timeout=30)
def total(values: list[int], scale: dict[str, int]) -> int:
    return sum(values) * scale["by"]


@task
def tagged(pair: tuple[int, str], db: str = "none") -> str:
    return f"{pair[0]}{pair[1]}@{db}"


@resource
def warehouse() -> Iterator[str]:
    yield "wh"


def test_a_workflow_round_trips_and_runs_the_same() -> None:
    """Tasks, literals, lists, dicts, tuples, shared calls, params, injects, ``after`` and
    providers are written and built again; the rebuilt target gives the same results."""
    rows: Param[int] = Param("rows", default=2)
    first = add(rows, 1)
    second = add(first, 10)
    summed = total([first, second, 4], {"by": 2})
    label = tagged((7, "x"), db=inject("warehouse")).after(summed)
    greeting = cs.format("{} and {}", summed, label)
    target = {"sum": summed, "text": greeting}
    engine = Engine(resources=[warehouse])
    text = cs.to_json(target)
    document = json.loads(text)
    assert document["format"] == "cascade.workflow/1"
    assert len(document["nodes"]) == 5  # first is written once, though taken twice
    names = [n["task"].get("qualname") or n["task"]["provider"] for n in document["nodes"]]
    assert sorted(names) == ["add", "add", "format", "tagged", "total"]
    rebuilt = cs.from_json(text)
    expected = asyncio.run(engine.run(target, params={"rows": 5}))
    assert asyncio.run(engine.run(rebuilt, params={"rows": 5})) == expected
    assert expected == {"sum": (6 + 16 + 4) * 2, "text": "52 and 7x@wh"}
    assert rebuilt["sum"].task is total  # the task itself, its options kept
    assert cs.to_json(rebuilt) == text


def test_what_json_cannot_carry_is_refused_naming_the_task() -> None:
    """A map, a condition, a router, a task defined in a function, options of one call and
    a value that is no JSON are each a ``WorkflowJsonError`` naming the task."""

    @task
    def local(x: int) -> int:
        return x

    cases = [
        (add.map(x=[1, 2], y=cs.unmapped(1)), "a map"),
        (add(1, 2).run_if(add(0, 0)), "condition"),
        (add(cs.Router(add(0, 0), {0: add(1, 1)}), 1), "Router"),
        (local(1), "cannot be found again"),
        (add(1, 2).with_retry(5), "cannot be found again"),
        (add(1, object()), "no JSON value"),
        (add(Param("p", type=list), 1), "only int, float, str and bool"),
    ]
    for target, why in cases:
        with pytest.raises(cs.WorkflowJsonError, match=why) as raised:
            cs.to_json(target)
        assert isinstance(raised.value, ValueError)
    with pytest.raises(cs.WorkflowJsonError, match=r"task 'local'"):
        cs.to_json(local(1))


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ("{not json", "not JSON"),
        ('{"format": "other"}', "not a workflow document"),
        (
            '{"format": "cascade.workflow/1", "nodes": [{"id": "n0", "task": '
            '{"module": "no_such_module_here", "qualname": "f"}}], "target": {"$node": "n0"}}',
            "cannot be imported",
        ),
        (
            '{"format": "cascade.workflow/1", "nodes": [], "target": {"$node": "n9"}}',
            "names no node",
        ),
        ('{"format": "cascade.workflow/1", "nodes": [], "target": {"$what": 1}}', "'\\$what'"),
    ],
)
def test_a_bad_document_is_refused_naming_what_is_wrong(document: str, why: str) -> None:
    """Not JSON, another format, a task that cannot be imported, a reference to no node."""
    with pytest.raises(cs.WorkflowJsonError, match=why):
        cs.from_json(document)
