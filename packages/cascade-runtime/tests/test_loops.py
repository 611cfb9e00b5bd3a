"""Loops (``Jump``, ``select_jump``, ``bind``), as the Cascade engine means them: a task returns
a jump, the run goes on at the route's task with the jump's data, ``None`` ends the loop; and
as ours shows them: every iteration a task of its own, steered like any other."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import (
    Engine,
    Event,
    Jump,
    JumpError,
    Param,
    ResultMissing,
    ResultStore,
    RouteMissing,
    Router,
    RunCancelledError,
    TaskBlocked,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskFailedError,
    TaskRunning,
    TaskSkipped,
    WorkflowJsonError,
    bind,
    current_task,
    inject,
    resource,
    select_jump,
    task,
    to_json,
    visualize,
)


class Recorded:
    def __init__(self, engine: Engine) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()
        engine.events.subscribe(self._record)

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type[TaskEvent]) -> list[str]:
        return [e.task_id for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Any) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


@task
def counter(n: int) -> Jump:
    return Jump("exit", n) if n <= 0 else Jump("continue", n - 1)


@task
def double(x: int) -> int:
    return 2 * x


async def test_a_loop_goes_on_with_each_jump_s_data_and_ends_with_the_exit_s() -> None:
    loop = counter(5)
    bind(loop, select_jump({"continue": loop, "exit": None}))
    after = double(loop)
    engine = Engine()
    seen = Recorded(engine)
    assert await engine.run(after) == 0
    iterations = [f"{loop.task_id}@{n}" for n in range(2, 7)]
    assert seen.of(TaskRunning) == [loop.task_id, *iterations, after.task_id]
    # each iteration ends before the next starts; the loop ends after its last, then double
    assert seen.of(TaskCompleted) == [*iterations, loop.task_id, after.task_id]
    names = {e.task_id: e.task_name for e in seen.events if isinstance(e, TaskRunning)}
    assert all(names[i] == "counter" for i in iterations)


async def test_a_jump_s_data_takes_the_place_of_a_param() -> None:
    """The Cascade engine's own check: the jump's data, not the Param, on each iteration."""
    calls: list[int] = []

    @task
    def countdown(n: int) -> Any:
        calls.append(n)
        if len(calls) > 10:
            return "looped forever"
        return "Done" if n <= 0 else Jump("continue", n - 1)

    loop = countdown(Param("n", 3, int))
    bind(loop, select_jump({"continue": loop}))
    assert await Engine().run(loop, params={"n": 3}) == "Done"
    assert calls == [3, 2, 1, 0]


async def test_a_dict_gives_arguments_by_name_and_position_and_resources_are_injected() -> None:
    seen: list[tuple[int, int, str]] = []

    @resource
    def prefix() -> Any:
        yield "p"

    @task
    def step(a: int, b: int = 0, tag: str = inject("prefix")) -> Any:
        seen.append((a, b, tag))
        if a >= 3:
            return a + b
        return Jump("next", {"a": a + 1, "b": b + 10}) if a % 2 else Jump("next", {"0": a + 1})

    loop = step(0, b=1)
    bind(loop, select_jump({"next": loop}))
    engine = Engine(resources=[prefix])
    assert await engine.run(loop) == 3 + 1
    # what the data names replaces the route's call's argument; the rest is as it was called
    assert seen == [(0, 1, "p"), (1, 1, "p"), (2, 11, "p"), (3, 1, "p")]


async def test_a_state_machine_goes_between_tasks_and_what_a_route_takes_is_computed_first() -> (
    None
):
    trail: list[str] = []

    @task
    def base() -> int:
        trail.append("base")
        return 100

    @task
    def ping(n: int) -> Jump:
        trail.append(f"ping {n}")
        return Jump("pong", n + 1) if n < 4 else Jump("done", f"ended at {n}")

    @task
    def pong(n: int, offset: int) -> Jump:
        trail.append(f"pong {n} {offset}")
        return Jump("ping", n + 1)

    first = ping(0)
    answer = pong(0, base())  # its offset from base, computed before the loop runs
    bind(first, select_jump({"pong": answer, "done": None}))
    bind(answer, select_jump({"ping": first}))
    engine = Engine()
    seen = Recorded(engine)
    assert await engine.run(first) == "ended at 4"
    assert trail == ["base", "ping 0", "pong 1 100", "ping 2", "pong 3 100", "ping 4"]
    names = [(e.task_id, e.task_name) for e in seen.events if isinstance(e, TaskRunning)]
    assert names[2:] == [  # base, the loop's first call, then its iterations
        (f"{first.task_id}@2", "pong"),
        (f"{first.task_id}@3", "ping"),
        (f"{first.task_id}@4", "pong"),
        (f"{first.task_id}@5", "ping"),
    ]


async def test_a_jump_the_run_cannot_follow_fails_its_task_saying_why() -> None:
    @task
    def lost() -> Jump:
        return Jump("nowhere")

    unbound = lost()
    with pytest.raises(TaskFailedError, match="no select_jump is bound") as unbound_error:
        await Engine().run(unbound)
    assert isinstance(unbound_error.value, JumpError)

    loop = counter(2)
    bind(loop, select_jump({"exit": None}))  # "continue" is no route
    with pytest.raises(JumpError, match="no route for jump key 'continue'"):
        await Engine().run(loop)


async def test_a_route_taking_the_loop_s_own_result_must_be_given_it_in_the_data() -> None:
    @task
    def start() -> Jump:
        return Jump("next")

    first = start()
    after = double(first)  # takes the loop's own result, which it cannot have
    bind(first, select_jump({"next": after}))
    with pytest.raises(JumpError, match="give that argument in the Jump's data"):
        await Engine().run(first)


async def test_a_loop_taking_a_router_goes_on_with_the_route_it_chose() -> None:
    """A route not chosen never runs (its task is skipped, not routed): the loop's iterations
    take the router's choice as its call did, not the route it did not choose."""

    @task
    def chosen() -> int:
        return 10

    @task
    def broken() -> int:
        raise ValueError("never wanted")

    @task
    def add(n: int, base: int) -> Any:
        return n + base if n == 3 else Jump("again", {"n": n + 1})

    loop = add(1, Router(Param("pick", "a"), {"a": chosen(), "b": broken()}))
    bind(loop, select_jump({"again": loop}))
    engine = Engine()
    seen = Recorded(engine)
    assert await engine.run(loop) == 13
    assert f"{loop.task_id}@3" in seen.of(TaskCompleted)


async def test_a_failed_iteration_fails_the_run_and_skips_what_needs_the_loop() -> None:
    @task
    def fragile(n: int) -> Jump:
        if n == 3:
            raise ValueError("three")
        return Jump("again", n + 1)

    loop = fragile(0)
    bind(loop, select_jump({"again": loop}))
    engine = Engine()
    seen = Recorded(engine)
    with pytest.raises(TaskFailedError) as failed:
        await engine.run(double(loop))
    assert failed.value.task_id == f"{loop.task_id}@4"
    assert isinstance(failed.value, ValueError)
    assert loop.task_id in seen.of(TaskSkipped)


async def test_an_iteration_is_retried_like_any_task() -> None:
    tries: dict[int, int] = {}

    @task
    def flaky(n: int) -> Any:
        tries[n] = tries.get(n, 0) + 1
        if n == 2 and tries[n] == 1:
            raise RuntimeError("once")
        return n if n == 3 else Jump("again", n + 1)

    loop = flaky(0).with_retry(max_attempts=2)
    bind(loop, select_jump({"again": loop}))
    assert await Engine().run(loop) == 3
    assert tries == {0: 1, 1: 1, 2: 2, 3: 1}


async def test_a_pause_of_the_task_s_name_holds_the_next_iteration() -> None:
    broker = InMemoryBroker()
    controller = InMemoryConnector(broker, presence=False)
    await controller.connect()
    reached = asyncio.Event()

    @task
    async def tick(n: int) -> Any:
        if n == 2:
            reached.set()
        return n if n == 4 else Jump("again", n + 1)

    loop = tick(0)
    bind(loop, select_jump({"again": loop}))
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    seen = Recorded(engine)
    topic = constraint_topic("task:tick", "pause")
    run = asyncio.create_task(engine.run(loop))
    try:
        await reached.wait()
        await controller.publish(topic, Constraint.pause("task:tick"), qos=1, retain=True)
        await seen.until(lambda: bool(seen.of(TaskBlocked)))
        held = seen.of(TaskBlocked)[0]
        assert held.startswith(f"{loop.task_id}@")
        assert not run.done()
        await controller.publish(topic, b"", qos=1, retain=True)
        assert await run == 4
    finally:
        run.cancel()
        await controller.disconnect()


async def test_a_loop_that_never_ends_is_ended_by_a_cancel() -> None:
    @task
    async def forever(n: int) -> Jump:
        await asyncio.sleep(0)
        return Jump("again", n + 1)

    loop = forever(0)
    bind(loop, select_jump({"again": loop}))
    engine = Engine()
    seen = Recorded(engine)
    run = asyncio.create_task(engine.run(loop))
    await seen.until(lambda: len(seen.of(TaskCompleted)) >= 20)
    engine.cancel(seen.events[0].run_id, reason="enough")
    with pytest.raises(RunCancelledError):
        await run
    cancelled = seen.of(TaskCancelled)
    assert loop.task_id in cancelled  # the loop itself ends, as does the iteration under way
    assert len(cancelled) == 2


@pytest.mark.parametrize("kept", [False, True])
async def test_an_iteration_s_current_task_is_its_own_under_the_loop_s_key(
    kept: bool, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, str]] = []

    @task
    def tally(n: int) -> Any:
        context = current_task()
        assert context is not None
        seen.append((context.task_id, context.task_name, context.key))
        return n if n == 3 else Jump("again", n + 1)

    loop = tally(1)
    bind(loop, select_jump({"again": loop}))
    engine = Engine(results=ResultStore(str(tmp_path))) if kept else Engine()
    assert await engine.run(loop) == 3
    assert seen == [
        (loop.task_id, "tally", "tally#1"),
        (f"{loop.task_id}@2", "tally", "tally#1@2"),
        (f"{loop.task_id}@3", "tally", "tally#1@3"),
    ]


async def test_a_thousand_iterations_run_one_after_another() -> None:
    loop = counter(999)
    bind(loop, select_jump({"continue": loop, "exit": None}))
    engine = Engine()
    seen = Recorded(engine)
    assert await engine.run(loop) == 0
    assert len(seen.of(TaskCompleted)) == 1000  # 999 iterations after the first, and the loop
    assert seen.of(TaskCompleted)[-2] == f"{loop.task_id}@1000"


async def test_a_rerun_of_a_failed_loop_resumes_at_the_iteration_that_failed(
    tmp_path: Path,
) -> None:
    calls: list[int] = []
    broken = {3}

    @task
    def fragile(n: int) -> Any:
        calls.append(n)
        if n in broken:
            raise ValueError("three")
        return n if n == 5 else Jump("again", n + 1)

    loop = fragile(0)
    bind(loop, select_jump({"again": loop}))
    engine = Engine(results=ResultStore(str(tmp_path)))
    with pytest.raises(TaskFailedError) as failed:
        await engine.run(double(loop))
    assert calls == [0, 1, 2, 3]
    broken.clear()
    calls.clear()
    seen = Recorded(engine)
    assert await engine.run(double(loop), rerun_of=failed.value.run_id) == 10
    assert calls == [3, 4, 5]  # what the failed run finished is read back, not run again
    reused = [e.task_id for e in seen.events if isinstance(e, TaskCompleted) and e.reused_from]
    assert reused == [f"{loop.task_id}@2", f"{loop.task_id}@3"]
    assert f"{loop.task_id}@4" in seen.of(TaskRunning)

    calls.clear()  # and a rerun of the run that finished runs none of it
    finished = seen.events[0].run_id
    assert await engine.run(double(loop), rerun_of=finished) == 10
    assert calls == []


async def test_a_rerun_of_a_loop_a_router_chose_resumes_it_too(tmp_path: Path) -> None:
    """A loop taken through a router is reused only once the router chooses it: as a loop
    still, going on from its kept first jump, never as a task whose result is that jump."""
    calls: list[int] = []
    broken = {3}

    @task
    def fragile(n: int) -> Any:
        calls.append(n)
        if n in broken:
            raise ValueError("three")
        return n if n == 4 else Jump("again", n + 1)

    @task
    def spare() -> int:
        return -1

    loop = fragile(1)
    bind(loop, select_jump({"again": loop}))
    target = double(Router(Param("pick", "loop"), {"loop": loop, "spare": spare()}))
    engine = Engine(results=ResultStore(str(tmp_path)))
    with pytest.raises(TaskFailedError) as failed:
        await engine.run(target)
    broken.clear()
    calls.clear()
    assert await engine.run(target, rerun_of=failed.value.run_id) == 8
    assert calls == [3, 4]


def test_visualize_draws_each_jump_and_a_route_that_runs_only_as_an_iteration() -> None:
    @task
    def lint(code: str) -> Jump:
        return Jump("fix", "errors")

    @task
    def fix(reason: str) -> Jump:
        return Jump("retry")

    checked = lint("src")
    fixer = fix("none yet")  # no task of the graph: it runs only where a jump goes
    bind(checked, select_jump({"fix": fixer, "done": None}))
    bind(fixer, select_jump({"retry": checked}))
    dot = visualize(checked)
    assert f'"{fixer.task_id}" [label="fix\\n(task)", shape=box];' in dot
    assert f'"{checked.task_id}" -> "{fixer.task_id}" [label="jump: fix", style=bold];' in dot
    assert f'"{fixer.task_id}" -> "{checked.task_id}" [label="jump: retry", style=bold];' in dot
    assert visualize(checked, "text").splitlines() == [
        f"{checked.task_id} [task lint]",
        f"{fixer.task_id} [task fix] (a loop's route)",
        f"{checked.task_id} jumps to {fixer.task_id} ('fix')",
        f"{fixer.task_id} jumps to {checked.task_id} ('retry')",
    ]


def test_a_loop_is_not_written_as_json() -> None:
    loop = counter(3)
    bind(loop, select_jump({"continue": loop, "exit": None}))
    with pytest.raises(WorkflowJsonError, match="a loop"):
        to_json(loop)


async def test_a_jump_to_a_task_whose_router_has_no_route_fails_the_task_that_jumped() -> None:
    @task
    def pick() -> str:
        return "z"  # no route of the router below

    @task
    def start() -> Jump:
        return Jump("next")

    @task
    def take(value: int) -> int:
        return value

    first = start()
    chooser = pick()
    bind(first, select_jump({"next": take(Router(chooser, {"x": 1, "y": 2}))}))
    engine = Engine()
    seen = Recorded(engine)
    with pytest.raises(TaskFailedError) as failed:
        await engine.run([first, chooser])
    assert failed.value.task_id == first.task_id
    assert isinstance(failed.value, RouteMissing)
    assert first.task_id in [e.task_id for e in seen.events if isinstance(e, TaskFailed)]


def test_a_kept_jump_that_is_no_key_and_data_is_refused_as_undecodable(tmp_path: Path) -> None:
    """A results file that says it holds a jump (msgpack extension 1) but holds no
    ``[target_key, data]`` is not believed: the store says it cannot be decoded."""
    forged = msgspec.msgpack.encode(msgspec.msgpack.Ext(1, msgspec.msgpack.encode(5)))
    fingerprint = "ab" * 32
    kept = tmp_path / "results" / fingerprint[:2] / fingerprint
    kept.parent.mkdir(parents=True)
    kept.write_bytes(forged)
    with pytest.raises(ResultMissing, match="cannot be decoded"):
        ResultStore(str(tmp_path)).read(fingerprint)
    good = msgspec.msgpack.encode(msgspec.msgpack.Ext(1, msgspec.msgpack.encode(["again", 4])))
    kept.write_bytes(good)
    assert ResultStore(str(tmp_path)).read(fingerprint) == Jump("again", 4)


_HELD: list[int] = []  # what tick measured (a list in its call would be copied)
_BROKER = InMemoryBroker()


@task
async def tick(n: int, at: tuple[int, int, int]) -> int | Jump:
    if n in at:
        _BROKER.history.clear()  # the fake broker's record of every message: the test's own
        gc.collect()
    if n == at[0]:  # what is allocated from here on and still held at the next two
        tracemalloc.start()
    elif n in at:
        held = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        _HELD.append(sum(stat.size for stat in held.statistics("filename")))
    return n if n == at[-1] else Jump("again", {"n": n + 1})


async def test_a_loop_of_any_length_holds_what_it_keeps_in_constant_memory() -> None:
    """3,000 iterations hold no more than 1,500 do: the run's state (two slots a loop), its
    telemetry (counts; a snapshot lists a loop's latest 1,000 iterations) and its held
    tasks keep a bounded part of a loop, not a slot an iteration."""
    engine = Engine(InMemoryConnector(_BROKER), heartbeat_interval=None)
    _HELD.clear()
    loop = tick(0, (500, 1_500, 3_000))
    bind(loop, select_jump({"again": loop}))
    try:
        assert await engine.run(loop) == 3_000
    finally:
        tracemalloc.stop()
    # what is held at 1,500 and 3,000 of what was made since 500: the same bounded part
    # (the latest iterations listed), and, before, 300 bytes more an iteration (a slot of the
    # run's state, each iteration's latest event for snapshots); a margin for noise
    grown = _HELD[1] - _HELD[0]
    assert grown < 1_500 * 30, f"{grown:,} bytes more held after 1,500 more iterations"
