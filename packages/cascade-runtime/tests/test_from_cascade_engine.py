"""What the Cascade engine's own engine tests assert its users' programs get, checked on ours.

Each test is one program of the original's engine test suite (named in its docstring), written
again for ``import cascade.runtime as cs`` with the smallest change a user makes. *As written*:
only that, an engine made as ``cs.Engine()`` (no solver, executor or bus to give) and events
read from ``engine.events.subscribe(handler)`` by their new names; *changed*: it relies on the
row of docs/from-cascade.md it names. Its timings are checked by counting, not by the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import constraint_topic


def spied() -> tuple[cs.Engine, list[cs.Event]]:
    """An engine and the list every event it emits is appended to (the original's SpySubscriber)."""
    engine = cs.Engine()
    events: list[cs.Event] = []
    engine.events.subscribe(events.append)
    return engine, events


def of_type(events: list[cs.Event], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


# --- test_flow_primitives.py: sequence and pipeline ---


async def test_a_sequence_runs_in_order() -> None:
    """test_sequence_executes_in_order: as written."""
    order: list[str] = []

    @cs.task
    def task_a() -> None:
        order.append("A")

    @cs.task
    def task_b() -> None:
        order.append("B")

    @cs.task
    def task_c() -> None:
        order.append("C")

    await cs.Engine().run(cs.sequence([task_a(), task_b(), task_c()]))
    assert order == ["A", "B", "C"]


async def test_a_sequence_gives_its_last_result() -> None:
    """test_sequence_forwards_last_result: as written."""

    @cs.task
    def first() -> str:
        return "first"

    @cs.task
    def last() -> str:
        return "last"

    assert await cs.Engine().run(cs.sequence([first(), last()])) == "last"


async def test_a_sequence_stops_at_a_failure_raising_it() -> None:
    """test_sequence_aborts_on_failure: as written (the run raises the task's ValueError)."""
    order: list[str] = []

    @cs.task
    def task_ok() -> None:
        order.append("ok")

    @cs.task
    def task_fail() -> None:
        order.append("fail")
        raise ValueError("This task fails")

    @cs.task
    def task_never() -> None:
        order.append("never")

    with pytest.raises(ValueError, match="This task fails"):
        await cs.Engine().run(cs.sequence([task_ok(), task_fail(), task_never()]))
    assert order == ["ok", "fail"]


async def test_a_sequence_stops_at_a_skip() -> None:
    """test_sequence_aborts_on_skipped_node: changed, the skip's reason is ``event.error``
    in our words (``TaskSkipped.reason`` codes)."""

    @cs.task
    def task_a() -> str:
        return "A"

    @cs.task
    def task_b(a: Any) -> str:
        return "B"

    @cs.task
    def task_c(b: Any) -> str:
        return "C"

    false_condition = cs.task(lambda: False)()
    engine, events = spied()
    workflow = cs.sequence([task_a(), task_b(1).run_if(false_condition), task_c(2)])
    assert await engine.run(workflow) is None
    skipped = {event.task_name: event for event in of_type(events, cs.TaskSkipped)}
    assert set(skipped) == {"task_b", "task_c"}
    assert skipped["task_b"].error == "condition false"
    assert "task_b" in skipped["task_c"].error  # skipped because the one before it was


async def test_a_pipeline_passes_each_result_on() -> None:
    """test_pipeline_chains_data_correctly: as written."""

    @cs.task
    def add_one(x: int) -> int:
        return x + 1

    @cs.task
    def multiply_by_two(x: int) -> int:
        return x * 2

    assert await cs.Engine().run(cs.pipeline(10, [add_one, multiply_by_two])) == 22


async def test_a_pipeline_starts_from_a_lazy_result() -> None:
    """test_pipeline_with_lazy_initial_input: as written."""

    @cs.task
    def get_initial() -> int:
        return 10

    @cs.task
    def add_one(x: int) -> int:
        return x + 1

    assert await cs.Engine().run(cs.pipeline(get_initial(), [add_one])) == 11


async def test_a_pipeline_passes_a_value_past_a_skipped_step() -> None:
    """test_pipeline_with_run_if_data_penetration: as written."""

    @cs.task
    def add_one(x: int) -> int:
        return x + 1

    @cs.task
    def multiply_by_two(x: int) -> int:
        return x * 2

    @cs.task
    def add_three(x: int) -> int:
        return x + 3

    false_condition = cs.task(lambda: False)()
    engine, events = spied()
    steps: list[Callable[[Any], Any]] = [
        add_one,
        lambda x: multiply_by_two(x).run_if(false_condition),
        add_three,
    ]
    assert await engine.run(cs.pipeline(10, steps)) == 14
    assert [event.task_name for event in of_type(events, cs.TaskSkipped)] == ["multiply_by_two"]


async def test_a_pipeline_step_whose_condition_holds_runs() -> None:
    """The other side of the original's pass-through: a true condition runs the step."""

    @cs.task
    def add_one(x: int) -> int:
        return x + 1

    @cs.task
    def multiply_by_two(x: int) -> int:
        return x * 2

    enabled: cs.Param[bool] = cs.Param("double", default=True)
    steps: list[Callable[[Any], Any]] = [lambda x: multiply_by_two(x).run_if(enabled), add_one]
    assert await cs.Engine().run(cs.pipeline(10, steps)) == 21
    assert await cs.Engine().run(cs.pipeline(10, steps), params={"double": False}) == 11


# --- test_retry.py ---


async def test_a_retried_task_succeeds_on_its_third_attempt() -> None:
    """test_retry_success_after_failure: as written (``TaskExecutionFinished`` with its
    ``status`` is ``TaskCompleted``)."""
    calls = 0

    @cs.task
    def flaky_task() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError("Fail!")
        return "Success"

    engine, events = spied()
    assert await engine.run(flaky_task().with_retry(max_attempts=3, delay=0.01)) == "Success"
    assert [event.attempt for event in of_type(events, cs.TaskRetrying)] == [1, 2]
    assert len(of_type(events, cs.TaskCompleted)) == 1


async def test_retries_exhausted_raise_the_task_s_exception() -> None:
    """test_retry_exhausted_failure: changed, ``max_attempts=2`` is 2 attempts (the original
    made 3) and the end is ``TaskFailed``."""
    calls = 0

    @cs.task
    def always_fail() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("Always fail")

    engine, events = spied()
    with pytest.raises(ValueError, match="Always fail"):
        await engine.run(always_fail().with_retry(max_attempts=2, delay=0.01))
    assert [event.attempt for event in of_type(events, cs.TaskRetrying)] == [1]
    failed = of_type(events, cs.TaskFailed)
    assert len(failed) == 1
    assert "ValueError: Always fail" in failed[0].error
    assert calls == 2


async def test_max_attempts_plus_one_keeps_the_original_s_count() -> None:
    """The page's one-line change for the count: ``max_attempts=3`` where the original said 2."""
    calls = 0

    @cs.task
    def always_fail() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("Always fail")

    with pytest.raises(ValueError, match="Always fail"):
        await cs.Engine().run(always_fail().with_retry(max_attempts=3, delay=0))
    assert calls == 3


# --- test_map.py, test_map_reduce_integration.py, test_map_policies.py ---


@cs.task
def double(x: int) -> int:
    return x * 2


@cs.task
def sum_all(numbers: list[int]) -> int:
    return sum(numbers)


@cs.task
def generate_numbers(n: int) -> list[int]:
    return list(range(n))


@cs.task
def add(a: int, b: int) -> int:
    return a + b


@pytest.mark.parametrize(
    ("workflow", "expected"),
    [
        pytest.param(lambda: sum_all(numbers=double.map(x=[1, 2, 3])), 12, id="test_map_basic"),
        pytest.param(lambda: sum_all(numbers=double.map(x=[])), 0, id="test_map_empty"),
        pytest.param(
            lambda: sum_all(numbers=double.map(x=generate_numbers(4))),
            12,
            id="test_map_dynamic_input",
        ),
        pytest.param(
            lambda: sum_all(numbers=add.map(a=[1, 2, 3], b=[10, 20, 30])),
            66,
            id="test_map_multiple_args",
        ),
        pytest.param(
            lambda: sum_all(numbers=double.map(x=generate_numbers(5))),
            20,
            id="test_map_reduce_pipeline",
        ),
    ],
)
async def test_maps_reduce_as_the_original_s(workflow: Any, expected: int) -> None:
    """test_map.py and test_map_reduce_integration.py: as written."""
    assert await cs.Engine().run(workflow()) == expected


async def test_lists_of_mismatched_lengths_are_a_value_error() -> None:
    """test_map_mismatched_lengths: changed, the ValueError's text is ours (``differ in
    length``), raised when the map is made."""
    with pytest.raises(ValueError, match="differ in length"):
        await cs.Engine().run(add.map(a=[1, 2], b=[10, 20, 30]))


async def test_a_retry_on_a_map_applies_to_each_item() -> None:
    """test_map_with_retry_policy: as written (each item fails once, then succeeds: the same
    calls on both, whatever ``max_attempts`` counts)."""
    calls: dict[int, int] = {}

    @cs.task
    def flaky_process(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] == 1:
            raise ValueError(f"Fail {x}")
        return x

    engine, events = spied()
    mapped = flaky_process.map(x=[1, 2, 3]).with_retry(max_attempts=2, delay=0.01)
    assert sorted(await engine.run(mapped)) == [1, 2, 3]
    assert len(of_type(events, cs.TaskRetrying)) == 3
    assert calls == {1: 2, 2: 2, 3: 2}


async def test_constraints_on_a_map_bound_its_items_together() -> None:
    """test_map_with_constraints_policy: as written (``cs.Engine(system_resources=...)``);
    never more items at once than the capacity."""
    running = 0
    most = 0

    @cs.task
    async def slow_task(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return x

    engine = cs.Engine(system_resources={"slots": 2})
    mapped = slow_task.map(x=[1, 2, 3, 4]).with_constraints(slots=1)
    assert sorted(await engine.run(mapped)) == [1, 2, 3, 4]
    assert most == 2


# --- test_input_execution.py ---


async def test_a_param_is_given_by_the_run() -> None:
    """test_engine_executes_param_task: as written."""
    count: cs.Param[int] = cs.Param("count", type=int)

    @cs.task
    def twice(x: int) -> int:
        return x * 2

    assert await cs.Engine().run(twice(count), params={"count": 10}) == 20


async def test_an_env_is_read_by_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_engine_executes_env_task: as written."""
    monkeypatch.setenv("TEST_VAR", "cascade_value")
    assert await cs.Engine().run(cs.Env("TEST_VAR")) == "cascade_value"


# --- test_control_flow.py ---


async def test_run_if_true_runs_and_skips_nothing() -> None:
    """test_run_if_true: as written."""

    @cs.task
    def condition() -> bool:
        return True

    @cs.task
    def action() -> str:
        return "executed"

    engine, events = spied()
    assert await engine.run(action().run_if(condition())) == "executed"
    assert not of_type(events, cs.TaskSkipped)


async def test_run_if_false_skips_and_the_run_says_the_target_is_missing() -> None:
    """test_run_if_false: changed, the reason ``ConditionFalse`` is ``error == "condition
    false"``."""

    @cs.task
    def condition() -> bool:
        return False

    @cs.task
    def action() -> str:
        return "executed"

    engine, events = spied()
    with pytest.raises(cs.DependencyMissingError):
        await engine.run(action().run_if(condition()))
    skipped = of_type(events, cs.TaskSkipped)
    assert [(event.task_name, event.error) for event in skipped] == [("action", "condition false")]


async def test_a_skip_skips_what_needs_its_result() -> None:
    """test_cascade_skip: changed, ``UpstreamSkipped_Data`` is an ``error`` naming the task."""

    @cs.task
    def condition() -> bool:
        return False

    @cs.task
    def step_a() -> str:
        return "A"

    @cs.task
    def step_b(val: str) -> str:
        return f"B got {val}"

    engine, events = spied()
    with pytest.raises(cs.DependencyMissingError):
        await engine.run(step_b(step_a().run_if(condition())))
    skipped = {event.task_name: event.error for event in of_type(events, cs.TaskSkipped)}
    assert sorted(skipped) == ["step_a", "step_b"]
    assert skipped["step_a"] == "condition false"
    assert "step_a" in skipped["step_b"]
    assert "skipped" in skipped["step_b"]


# --- test_router_pruning.py ---


async def test_a_route_not_taken_is_pruned_with_what_only_it_needs() -> None:
    """test_pruning_exclusive_branches: changed, ``Pruned`` is ``error == "not routed"``."""

    @cs.task
    def get_route() -> str:
        return "a"

    @cs.task
    def branch_a() -> str:
        return "A"

    @cs.task
    def branch_b(val: str) -> str:
        return "B"

    @cs.task
    def dummy_dep() -> str:
        return "DEP"

    @cs.task
    def branch_b_upstream(dep: str) -> str:
        return "B_UP"

    @cs.task
    def consumer(val: str) -> str:
        return val

    chain = branch_b(branch_b_upstream(dummy_dep()))
    router: cs.Router[str] = cs.Router(selector=get_route(), routes={"a": branch_a(), "b": chain})
    engine, events = spied()
    assert await engine.run(consumer(router)) == "A"
    skipped = {event.task_name: event.error for event in of_type(events, cs.TaskSkipped)}
    assert {"branch_b", "branch_b_upstream"} <= set(skipped)
    assert all(error == "not routed" for error in skipped.values())


async def test_a_dependency_shared_with_the_route_taken_runs() -> None:
    """test_pruning_shared_dependency: as written but for the event's field, as above."""

    @cs.task
    def get_route() -> str:
        return "a"

    @cs.task
    def shared_task() -> str:
        return "SHARED"

    @cs.task
    def branch_a(dep: str) -> str:
        return f"A({dep})"

    @cs.task
    def branch_b(dep: str) -> str:
        return f"B({dep})"

    @cs.task
    def consumer(val: str) -> str:
        return val

    shared = shared_task()
    router: cs.Router[str] = cs.Router(
        selector=get_route(), routes={"a": branch_a(shared), "b": branch_b(shared)}
    )
    engine, events = spied()
    assert await engine.run(consumer(router)) == "A(SHARED)"
    assert [event.task_name for event in of_type(events, cs.TaskSkipped)] == ["branch_b"]


# --- test_engine_constraints.py, test_engine_concurrency.py: constraints over the broker ---


async def _controlled() -> tuple[InMemoryBroker, InMemoryConnector, cs.Engine, list[cs.Event]]:
    """A broker, a controller on it (the original's test publishing on its MockConnector) and an
    engine connected to it that records its events."""
    broker = InMemoryBroker()
    controller = InMemoryConnector(broker, presence=False)
    await controller.connect()
    engine = cs.Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    events: list[cs.Event] = []
    engine.events.subscribe(events.append)
    return broker, controller, engine, events


def _original_payload(identity: str, scope: str, kind: str, **params: Any) -> bytes:
    """A constraint as the original's tests write it: its dict, as JSON on the wire."""
    import json

    return json.dumps({"id": identity, "scope": scope, "type": kind, "params": params}).encode()


async def test_a_task_pause_holds_it_until_cleared_then_the_run_ends() -> None:
    """test_engine_pauses_and_resumes_specific_task: as written, the engine made as
    ``cs.Engine(connector)``; the payload is the original's, on the original's topic
    (``cascade/constraints/task/task_b``); the run gives its real result (the original's
    test executor gave ``"result"``)."""
    broker, controller, engine, events = await _controlled()
    held = asyncio.Event()
    engine.events.subscribe(lambda event: held.set() if isinstance(event, cs.TaskBlocked) else None)

    @cs.task
    def task_a() -> str:
        return "A"

    @cs.task
    def task_b(a: str) -> str:
        return f"B after {a}"

    @cs.task
    def task_c(b: str) -> str:
        return f"C after {b}"

    topic = constraint_topic("task:task_b")
    await controller.publish(
        topic, _original_payload("pause-b", "task:task_b", "pause"), qos=1, retain=True
    )
    await broker.idle()
    run = asyncio.create_task(engine.run(task_c(task_b(task_a()))))
    await asyncio.wait_for(held.wait(), 10)
    started = {event.task_name for event in of_type(events, cs.TaskRunning)}
    assert started == {"task_a"}
    await controller.publish(topic, b"", qos=1, retain=True)
    await broker.idle()
    assert await asyncio.wait_for(run, 10) == "C after B after A"
    completed = {event.task_name for event in of_type(events, cs.TaskCompleted)}
    assert completed == {"task_a", "task_b", "task_c"}
    await controller.disconnect()


async def test_a_global_pause_holds_every_task() -> None:
    """test_engine_pauses_on_global_pause_constraint: as written, as above; the pause is in
    force before the run starts (the original's test raced its first task to send it)."""
    broker, controller, engine, events = await _controlled()
    held = asyncio.Event()
    engine.events.subscribe(lambda event: held.set() if isinstance(event, cs.TaskBlocked) else None)

    @cs.task
    def task_a() -> str:
        return "A"

    topic = constraint_topic("global")
    await controller.publish(
        topic, _original_payload("global-pause", "global", "pause"), qos=1, retain=True
    )
    await broker.idle()
    run = asyncio.create_task(engine.run(task_a()))
    await asyncio.wait_for(held.wait(), 10)
    assert not of_type(events, cs.TaskRunning)
    await controller.publish(topic, b"", qos=1, retain=True)
    await broker.idle()
    assert await asyncio.wait_for(run, 10) == "A"
    await controller.disconnect()


@pytest.mark.parametrize("scope", ["task:slow_task", "global"])
async def test_a_concurrency_limit_of_one_runs_tasks_one_at_a_time(scope: str) -> None:
    """test_concurrency_constraint_on_map and test_global_concurrency_limit: as written, as
    above."""
    broker, controller, engine, _ = await _controlled()
    running = 0
    most = 0

    @cs.task
    async def slow_task(x: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return x

    await controller.publish(
        constraint_topic(scope),
        _original_payload("limit", scope, "concurrency", limit=1),
        qos=1,
        retain=True,
    )
    await broker.idle()
    assert sorted(await engine.run(slow_task.map(x=[1, 2, 3, 4]))) == [1, 2, 3, 4]
    assert most == 1
    await controller.disconnect()


# --- test_explicit_control_flow.py and test_tco_param_override.py: loops ---


async def test_an_explicit_jump_loop_ends_with_the_exit_s_data() -> None:
    """test_explicit_jump_loop: as written."""

    @cs.task
    def counter(n: int) -> cs.Jump:
        if n <= 0:
            return cs.Jump(target_key="exit", data=n)
        return cs.Jump(target_key="continue", data=n - 1)

    loop_node = counter(5)
    jump_selector = cs.select_jump({"continue": loop_node, "exit": None})
    cs.bind(loop_node, jump_selector)
    assert await cs.Engine().run(loop_node) == 0


async def test_a_jump_s_data_overrides_a_param() -> None:
    """test_jump_overrides_param: as written."""
    results: list[int] = []

    @cs.task
    def recursive_task(n: int) -> Any:
        if len(results) > 10:
            return "InfiniteLoopDetected"
        results.append(n)
        if n <= 0:
            return "Done"
        return cs.Jump(target_key="continue", data=n - 1)

    t = recursive_task(cs.Param("n", 3, int))
    cs.bind(t, cs.select_jump({"continue": t}))
    assert await cs.Engine().run(t, params={"n": 3}) == "Done"
    assert results == [3, 2, 1, 0]


async def test_a_jump_s_data_overrides_a_param_beside_an_injected_resource() -> None:
    """test_jump_overrides_param_complex_path: as written (``engine.register``)."""
    results: list[int] = []

    @cs.resource
    def dummy_resource() -> Any:
        yield "dummy_value"

    @cs.task
    def recursive_task_with_injection(n: int, injected: str = cs.inject("dummy_resource")) -> Any:
        assert injected == "dummy_value"
        if len(results) > 10:
            return "InfiniteLoopDetected"
        results.append(n)
        if n <= 0:
            return "Done"
        return cs.Jump(target_key="continue", data=n - 1)

    t = recursive_task_with_injection(cs.Param("n", 3, int))
    cs.bind(t, cs.select_jump({"continue": t}))
    engine = cs.Engine()
    engine.register(dummy_resource)
    assert await engine.run(t, params={"n": 3}) == "Done"
    assert results == [3, 2, 1, 0]
