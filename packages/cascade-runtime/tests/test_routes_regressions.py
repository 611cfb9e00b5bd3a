"""What a workflow says is what runs: the disagreements the generated workflows found
(tests/generated), each shrunk to its smallest graph, with what docs/workflows.md says.

Those marked ``xfail`` fail on the engine as they were found; each flips when it is fixed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cascade.runtime import (
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


@pytest.mark.xfail(strict=True, reason="issue 79: a router shared by two tasks runs every route")
async def test_a_router_two_tasks_take_runs_only_its_chosen_route() -> None:
    routed: Router[str] = Router(
        selector=Param("src", default="db"), routes={"db": source("db"), "api": source("api")}
    )
    ran = await run(take(routed, take(routed)))
    assert ran.result == "take(db, take(db))"
    assert calls["api"] == 0
    assert [e.error for e in ran.events if e.state == "SKIPPED"] == ["not routed"]


@pytest.mark.xfail(strict=True, reason="issue 79: a skip leaks through a route not chosen")
async def test_a_skip_in_a_route_not_chosen_does_not_skip_the_task_two_routers_feed() -> None:
    skipped = source("a").run_if(Param("c", default=False))
    chosen = source("b")
    ran = await run(
        take(
            Router(Param("p", default="x"), {"x": chosen, "y": skipped}),
            Router(Param("q", default="x"), {"x": chosen, "y": skipped}),
        )
    )
    assert ran.result == "take(b, b)"


@pytest.mark.xfail(strict=True, reason="issue 79: a skip leaks through a route not chosen")
async def test_a_skip_of_a_task_the_target_names_stays_out_of_a_router_not_choosing_it() -> None:
    skipped = source("a").run_if(Param("c", default=False))
    ran = await run(
        [take(Router(Param("p", default="x"), {"x": source("b"), "y": skipped})), skipped]
    )
    assert ran.result == ["take(b)", None]


@pytest.mark.xfail(strict=True, reason="a failure leaks through a route not chosen")
async def test_a_failure_of_a_task_the_target_names_stays_out_of_a_router_not_choosing_it() -> None:
    failing = boom()
    ran = await run(
        [take(Router(Param("p", default="y"), {"x": failing, "y": source("b")})), failing]
    )
    assert ran.failed  # boom failed: the run fails, but take had its route
    assert ran.ended("take") == "COMPLETED"


@pytest.mark.xfail(strict=True, reason="a nested router's selector runs in a route not chosen")
async def test_the_selector_of_a_router_in_a_route_not_chosen_does_not_run() -> None:
    inner: Router[str] = Router(source("key"), {"key": source("deep")})
    ran = await run(take(Router(Param("p", default="x"), {"x": source("b"), "y": inner})))
    assert ran.result == "take(b)"
    assert calls["key"] == 0
    assert calls["deep"] == 0


@pytest.mark.xfail(strict=True, reason="a router in a route not chosen fails its consumer")
async def test_a_router_in_a_route_not_chosen_does_not_fail_its_consumer() -> None:
    key = source("y")
    inner: Router[str] = Router(
        key, {"x": source("a")}
    )  # no route "y": never asked, its route not chosen
    ran = await run(take(Router(key, {"x": inner, "y": source("b")})))
    assert not ran.failed
    assert ran.result == "take(b)"


@pytest.mark.xfail(strict=True, reason="a task after a map of no items starts twice")
async def test_a_task_after_a_map_of_no_items_runs_once() -> None:
    ran = await run(take(double.map(x=[])))
    assert ran.result == "take([])"
    assert (ran.started("take"), calls["take"]) == (1, 1)
    assert ran.ended("take") == "COMPLETED"


@pytest.mark.xfail(strict=True, reason="a task whose chosen route is a plain value starts twice")
async def test_a_task_whose_chosen_route_is_a_plain_value_runs_once() -> None:
    ran = await run(take(Router(Param("p", default="x"), {"x": 2, "y": source("a")})))
    assert ran.result == "take(2)"
    assert (ran.started("take"), calls["take"]) == (1, 1)
    assert ran.ended("take") == "COMPLETED"
