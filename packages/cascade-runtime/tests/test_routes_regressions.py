"""What a workflow says is what runs: the disagreements the generated workflows found
(tests/generated), each shrunk to its smallest graph, with what docs/workflows.md says.

The first it found (a router two tasks take runs every route; a skip or a failure leaks through
a route not chosen) are in test_routes.py with the issue's own examples.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cascade.runtime import (
    DependencyMissingError,
    Engine,
    Event,
    Param,
    Router,
    TaskEvent,
    TaskFailedError,
    TaskMapped,
    TaskRunning,
    task,
)

calls: Counter[str] = Counter()


@task
def source(name: str) -> str:
    calls[name] += 1
    return name


@task
def boom() -> str:
    calls["boom"] += 1
    raise ValueError("boom")


@task
def take(*values: Any) -> str:
    calls["take"] += 1
    return f"take({', '.join(map(str, values))})"


@task
def double(x: int) -> int:
    return 2 * x


class Ran:
    """A run's outcome: its result (or that it failed), and each task's events by name."""

    def __init__(self) -> None:
        self.result: Any = None
        self.failed = False
        self.events: list[TaskEvent] = []

    def ended(self, name: str) -> str:
        """How the task ``name`` ended: its last state, with its error if any."""
        [last] = [e for e in self.events if e.task_name == name][-1:]
        return f"{last.state} {last.error}".strip()

    def started(self, name: str) -> int:
        """How many attempts of ``name`` started."""
        return sum(
            1
            for e in self.events
            if e.task_name == name and isinstance(e, TaskRunning) and not isinstance(e, TaskMapped)
        )


async def run(target: Any) -> Ran:
    calls.clear()
    ran = Ran()
    engine = Engine()

    def record(event: Event) -> None:
        if isinstance(event, TaskEvent):
            ran.events.append(event)

    engine.events.subscribe(record)
    try:
        ran.result = await engine.run(target)
    except TaskFailedError:
        ran.failed = True
    return ran


async def test_the_selector_of_a_router_in_a_route_not_chosen_does_not_run() -> None:
    inner: Router[str] = Router(source("key"), {"key": source("deep")})
    ran = await run(take(Router(Param("p", default="x"), {"x": source("b"), "y": inner})))
    assert ran.result == "take(b)"
    assert calls["key"] == 0
    assert calls["deep"] == 0


async def test_a_router_in_a_route_not_chosen_does_not_fail_its_consumer() -> None:
    key = source("y")
    inner: Router[str] = Router(
        key, {"x": source("a")}
    )  # no route "y": never asked, its route not chosen
    ran = await run(take(Router(key, {"x": inner, "y": source("b")})))
    assert not ran.failed
    assert ran.result == "take(b)"


async def test_a_task_after_a_map_of_no_items_runs_once() -> None:
    ran = await run(take(double.map(x=[])))
    assert ran.result == "take([])"
    assert (ran.started("take"), calls["take"]) == (1, 1)
    assert ran.ended("take") == "COMPLETED"


async def test_a_task_whose_chosen_route_is_a_plain_value_runs_once() -> None:
    ran = await run(take(Router(Param("p", default="x"), {"x": 2, "y": source("a")})))
    assert ran.result == "take(2)"
    assert (ran.started("take"), calls["take"]) == (1, 1)
    assert ran.ended("take") == "COMPLETED"


async def test_a_map_a_skip_leaves_not_routed_before_it_is_readied_makes_no_items() -> None:
    """The run's first tasks are readied one after another: the first, skipped by its
    condition, leaves the router's selector without a result, so the map (a route of that
    router, ready from the start) ends ``not routed`` before its turn; its turn must not map it
    all the same."""
    skipped = source("a").run_if(Param("c", default=False))
    mapped = double.map(x=[1, 2])
    engine = Engine()
    events: list[TaskEvent] = []
    engine.events.subscribe(lambda e: events.append(e) if isinstance(e, TaskEvent) else None)
    with pytest.raises(DependencyMissingError):
        await engine.run(take(Router(take(skipped), {"x": mapped, "y": skipped})))
    ran = [(type(e).__name__, e.task_id) for e in events if e.task_name == "double"]
    assert ran == [("TaskSkipped", mapped.task_id)]
