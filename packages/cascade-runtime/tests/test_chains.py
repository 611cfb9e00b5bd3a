"""Order and chains: ``after`` (an order-only dependency), ``sequence`` and ``pipeline``, with the
meanings the Cascade engine gives them, and how they compose with conditions, maps, routers,
the graph on the wire and reruns."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.interfaces import CascadeError
from cascade.interfaces.graphs import check_graph
from cascade.runtime import (
    ChainError,
    CycleError,
    Engine,
    Event,
    Param,
    Router,
    RunStarted,
    TaskCompleted,
    TaskFailedError,
    TaskRunning,
    TaskSkipped,
    pipeline,
    sequence,
    task,
)


class Steps:
    """Tasks that note when each of their calls starts and ends, by name."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.broken: set[str] = set()

    def step(self, name: str) -> Any:
        @task(name=name)
        async def made() -> str:
            self.log.append(f"{name} starts")
            await asyncio.sleep(0)  # let anything that could run beside it run
            if name in self.broken:
                self.log.append(f"{name} fails")
                raise RuntimeError(f"{name} broke")
            self.log.append(f"{name} ends")
            return name

        return made


def recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


def skipped(events: list[Event]) -> dict[str, str]:
    return {e.task_name: e.error or "" for e in events if isinstance(e, TaskSkipped)}


@task
def add_one(x: int) -> int:
    return x + 1


@task
def double(x: int) -> int:
    return x * 2


async def test_a_sequence_runs_its_tasks_one_after_the_other_and_gives_the_last() -> None:
    steps = Steps()
    a, b, c = (steps.step(n) for n in "abc")
    assert await Engine().run(sequence([a(), b(), c()])) == "c"
    assert steps.log == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]


async def test_a_sequence_stops_at_its_first_failure() -> None:
    """The run fails; what comes after the failed task never starts, skipped naming it."""
    steps = Steps()
    steps.broken = {"b"}
    engine = Engine()
    events = recorded(engine)
    with pytest.raises(TaskFailedError) as raised:
        await engine.run(sequence([steps.step("a")(), steps.step("b")(), steps.step("c")()]))
    assert raised.value.task_name == "b"
    assert steps.log == ["a starts", "a ends", "b starts", "b fails"]
    assert list(skipped(events)) == ["c"]
    assert "'b'" in skipped(events)["c"]
    assert "failed" in skipped(events)["c"]


async def test_a_sequence_stops_at_a_task_its_condition_skips() -> None:
    """A task skipped by its run_if skips those after it (the run does not fail)."""
    steps = Steps()
    engine = Engine()
    events = recorded(engine)
    no = task(name="no")(lambda: False)()
    target = sequence([steps.step("a")(), steps.step("b")().run_if(no), steps.step("c")()])
    assert await engine.run(target) is None
    assert steps.log == ["a starts", "a ends"]
    why = skipped(events)
    assert why["b"] == "condition false"
    assert why["c"].startswith("upstream task 'b'")
    assert "was skipped" in why["c"]


async def test_after_orders_without_passing_a_value() -> None:
    """The task runs after each predecessor and takes none of their results; ``after`` adds to
    what it was given before and returns the lazy result."""
    steps = Steps()
    seen: list[tuple[Any, ...]] = []

    @task
    def last(*values: Any) -> str:
        seen.append(values)
        return "last"

    first, second = steps.step("first")(), steps.step("second")()
    lazy = last(1)
    assert lazy.after(first) is lazy
    lazy.after(second)
    assert await Engine().run(lazy) == "last"
    assert seen == [(1,)]
    assert set(steps.log) == {"first starts", "first ends", "second starts", "second ends"}


async def test_a_task_after_a_failed_one_is_skipped_and_the_rest_goes_on() -> None:
    steps = Steps()
    steps.broken = {"bad"}
    engine = Engine()
    events = recorded(engine)
    cleanup = steps.step("cleanup")().after(steps.step("bad")())
    other = steps.step("other")()
    with pytest.raises(TaskFailedError):
        await engine.run([cleanup, other])
    assert "other ends" in steps.log
    assert "cleanup starts" not in steps.log
    assert list(skipped(events)) == ["cleanup"]


async def test_a_pipeline_passes_each_result_to_the_next_step() -> None:
    assert await Engine().run(pipeline(10, [add_one, double])) == 22
    assert await Engine().run(pipeline(add_one(9), [double])) == 20
    lazy = add_one(1)
    assert pipeline(lazy, []) is lazy
    assert await Engine().run(pipeline(3, [lambda x: add_one(x).with_retry(2), double])) == 8


def test_chains_refuse_what_they_cannot_chain() -> None:
    """An empty sequence, an item or predecessor that is no lazy result (a task not called is
    named as such), a pipeline step that is a call or no callable: ChainError, at once."""
    with pytest.raises(ChainError, match="at least one"):
        sequence([])
    with pytest.raises(ChainError, match=r"the task add_one not called: add_one\(\.\.\.\)"):
        sequence([add_one(1), add_one])  # type: ignore[list-item]
    with pytest.raises(ChainError, match="not int"):
        add_one(1).after(3)  # type: ignore[arg-type]
    with pytest.raises(ChainError, match="give the task, add_one, not a call of it"):
        pipeline(1, [add_one(1)])  # type: ignore[list-item]
    with pytest.raises(ChainError, match="not str"):
        pipeline(1, ["add_one"])  # type: ignore[list-item]
    with pytest.raises(ChainError, match="list of lazy results"):
        sequence(add_one(1))  # type: ignore[arg-type]
    assert issubclass(ChainError, CascadeError)
    assert issubclass(ChainError, TypeError)
    assert issubclass(ChainError, ValueError)


async def test_a_task_after_itself_is_a_cycle() -> None:
    a = add_one(1)
    b = double(a)
    a.after(b)
    with pytest.raises(CycleError):
        await Engine().run(b)


async def test_a_map_in_a_sequence_starts_after_the_task_before_it_and_ends_before_the_next() -> (
    None
):
    log: list[str] = []

    @task
    def setup() -> None:
        log.append("setup")

    @task
    def work(x: int) -> int:
        log.append(f"work {x}")
        if x == 99:
            raise ValueError("99")
        return x

    @task
    def teardown() -> str:
        log.append("teardown")
        return "done"

    assert await Engine().run(sequence([setup(), work.map(x=[1, 2, 3]), teardown()])) == "done"
    assert log[0] == "setup"
    assert log[-1] == "teardown"
    assert sorted(log[1:-1]) == ["work 1", "work 2", "work 3"]
    log.clear()
    engine = Engine()
    events = recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(sequence([setup(), work.map(x=[1, 99]), teardown()]))
    assert "teardown" not in log
    assert "teardown" in skipped(events)


async def test_maps_of_sequences_each_item_its_own_chain() -> None:
    """A sequence per item of a list: each chain in its order, the chains side by side."""
    log: list[tuple[str, int]] = []

    @task
    def fetch(i: int) -> int:
        log.append(("fetch", i))
        return i

    @task
    def store(i: int) -> int:
        log.append(("store", i))
        return i * 10

    chains = [sequence([fetch(i), store(i)]) for i in range(3)]
    assert await Engine().run(chains) == [0, 10, 20]
    for i in range(3):
        assert log.index(("fetch", i)) < log.index(("store", i))


async def test_a_rerun_from_a_sequences_failure_reuses_what_completed() -> None:
    """b fails, c is skipped; once b is fixed, a rerun reuses a and runs b then c."""
    calls: list[str] = []
    broken = {"b"}

    def made(name: str) -> Any:
        @task(name=name)
        def body() -> str:
            calls.append(name)
            if name in broken:
                raise RuntimeError(f"{name} broke")
            return name

        return body

    def workflow() -> Any:
        return sequence([made("a")(), made("b")(), made("c")()])

    engine = Engine(results=f"memory://chains-{uuid.uuid4().hex}")
    events = recorded(engine)
    with pytest.raises(TaskFailedError):
        await engine.run(workflow())
    first = next(e.run_id for e in events if isinstance(e, RunStarted))
    broken.clear()
    steps = {s.task_name: s.action for s in await engine.plan(workflow(), rerun_of=first)}
    assert steps == {"a": "reuse", "b": "run", "c": "run"}
    assert await engine.run(workflow(), rerun_of=first) == "c"
    assert calls == ["a", "b", "b", "c"]
    reused = [e for e in events if isinstance(e, TaskCompleted) and e.reused_from == first]
    assert [e.task_name for e in reused] == ["a"]


async def test_the_graph_on_the_wire_says_which_dependencies_are_order_only() -> None:
    """``after`` lists every dependency, ``order`` those taken only for their order (not one
    also taken as data), and a reader takes the graph."""
    engine = Engine()
    events = recorded(engine)
    a, b = add_one(1), add_one(2)
    c = double(b).after(a, b)
    await engine.run(c)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.graph is not None
    node = {n.id: n for n in check_graph(started.graph).nodes}[c.task_id]
    assert sorted(node.after) == sorted([a.task_id, b.task_id])
    assert node.order == [a.task_id]
    assert node.conditions == []


async def test_an_order_only_dependency_is_needed_like_an_argument_under_routers() -> None:
    """A sequence as a router's route runs in order when chosen; not chosen, none of it runs."""
    steps = Steps()
    pick: Param[str] = Param("pick", default="chain")

    @task
    def take(value: Any) -> Any:
        return value

    def target() -> Any:
        chain = sequence([steps.step("x")(), steps.step("y")()])
        return take(Router(pick, {"chain": chain, "other": steps.step("z")()}))

    engine = Engine()
    events = recorded(engine)
    assert await engine.run(target()) == "y"
    assert steps.log == ["x starts", "x ends", "y starts", "y ends"]
    steps.log.clear()
    events.clear()
    assert await engine.run(target(), params={"pick": "other"}) == "z"
    assert steps.log == ["z starts", "z ends"]
    assert skipped(events) == {"x": "not routed", "y": "not routed"}
    assert not [e for e in events if isinstance(e, TaskRunning) and e.task_name in "xy"]


async def test_a_task_taking_a_router_after_a_failed_task_is_skipped() -> None:
    """The order-only dependency of a task that takes a router is one it needs, whatever the
    router chooses."""
    steps = Steps()
    steps.broken = {"first"}
    engine = Engine()
    events = recorded(engine)

    @task
    def take(value: Any) -> Any:
        steps.log.append("take")
        return value

    lazy = take(Router(Param("pick", default="a"), {"a": 1, "b": 2})).after(steps.step("first")())
    with pytest.raises(TaskFailedError):
        await engine.run(lazy)
    assert "take" not in steps.log
    assert list(skipped(events)) == ["take"]


def test_the_names_are_the_runtimes() -> None:
    assert cs.sequence is sequence
    assert cs.pipeline is pipeline
    assert cs.ChainError is ChainError


async def test_a_selector_needing_a_task_that_takes_a_route_it_decides_does_not_hang() -> None:
    """Found by the generated workflows once choices had ``after``; it hung as well with the
    selector taking that task as data, as here (not an order-only matter): ``middle`` waited
    for ``routed``, a route its router did not choose, which the second router, whose
    selector needs ``middle``, may choose. A task no longer waits for a task it takes only
    through routes its routers did not choose."""
    flag: Param[str] = Param("p", default="y")

    @task
    def choose(_: Any) -> str:
        return "x"

    base = add_one(1)
    routed = double(base)
    middle = add_one(Router(flag, {"x": routed, "y": base}))
    target = add_one(Router(choose(middle), {"x": routed}))
    assert await asyncio.wait_for(Engine().run(target), 5) == 5
