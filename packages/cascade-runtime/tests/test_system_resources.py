"""with_constraints against Engine(system_resources=...): a task starts when its amounts fit,
holds them while its attempt runs, and fails at once when they can never be had."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, Hold, constraint_topic
from cascade.runtime import (
    CapacityError,
    DependencyMissingError,
    Engine,
    Event,
    Param,
    TaskBlocked,
    TaskCompleted,
    TaskFailed,
    TaskFailedError,
    TaskRunning,
    TaskSkipped,
    task,
)
from cascade.runtime.testing import EventRecorder, eventually

GPU = {"gpu_slots": 1, "memory_gb": 32}


def _engine(
    resources: dict[str, float] | None = None, **options: Any
) -> tuple[Engine, EventRecorder]:
    engine = Engine(system_resources=GPU if resources is None else resources, **options)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    return engine, recorder


def _of(recorder: EventRecorder, kind: type[Event], task_id: str) -> list[Any]:
    return [
        e for e in recorder.events if isinstance(e, kind) and getattr(e, "task_id", 0) == task_id
    ]


def _order(recorder: EventRecorder) -> list[tuple[str, str]]:
    """(state, task id) of every RUNNING and COMPLETED, in order."""
    return [
        (type(e).__name__, e.task_id)
        for e in recorder.events
        if isinstance(e, (TaskRunning, TaskCompleted))
    ]


async def test_two_tasks_that_ask_for_the_one_gpu_never_run_together() -> None:
    """The second waits BLOCKED, naming the resource and who holds it, until the first ends."""
    engine, recorder = _engine()
    release = asyncio.Event()

    @task
    async def train(i: int) -> int:
        if i == 1:
            await release.wait()
        return i

    first = train(1).with_constraints(gpu_slots=1, memory_gb=16)
    second = train(2).with_constraints(gpu_slots=1, memory_gb=16)
    run = asyncio.create_task(engine.run([first, second]))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, second.task_id)))
    assert not _of(recorder, TaskRunning, second.task_id)
    assert engine.system_resources_in_use == {"gpu_slots": 1, "memory_gb": 16}
    (blocked,) = _of(recorder, TaskBlocked, second.task_id)
    assert blocked.held_by == (
        Hold(
            type="resource",
            resource="gpu_slots",
            amount=1,
            in_use=1,
            capacity=1,
            users={first.task_id: 1},
        ),
    )  # memory_gb: 16 of 32 in use, 16 more fit, so it does not hold it
    release.set()
    assert await run == [1, 2]
    assert _order(recorder) == [
        ("TaskRunning", first.task_id),
        ("TaskCompleted", first.task_id),
        ("TaskRunning", second.task_id),
        ("TaskCompleted", second.task_id),
    ]
    assert engine.system_resources_in_use == {"gpu_slots": 0, "memory_gb": 0}


async def test_tasks_whose_amounts_fit_together_run_together() -> None:
    """Two halves of the memory run at once (each waits for the other to have started)."""
    engine, _ = _engine()
    started: list[int] = []
    both = asyncio.Event()

    @task
    async def load(i: int) -> int:
        started.append(i)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)
        return i

    loads = [load.with_constraints(memory_gb=16)(i) for i in range(2)]
    assert await engine.run(loads) == [0, 1]


async def test_plain_functions_in_threads_are_serialized_too() -> None:
    """Sync tasks asking for the one GPU: never two threads in them at once."""
    engine, recorder = _engine()
    inside = 0
    most = 0
    lock = threading.Lock()
    go = threading.Event()

    @task
    def infer(i: int) -> int:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        go.wait(5)
        with lock:
            inside -= 1
        return i

    gpu_infer = infer.with_constraints(gpu_slots=1)
    calls = [gpu_infer(i) for i in range(3)]
    run = asyncio.create_task(engine.run(calls))
    await recorder.until(lambda: len(recorder.names(TaskBlocked)) == 2)
    go.set()
    assert await run == [0, 1, 2]
    assert most == 1


async def test_an_amount_computed_upstream_is_waited_for_and_used() -> None:
    """The existing engine's dynamic constraint: cpu_cores from a task's result."""
    engine, recorder = _engine({"cpu_cores": 8})
    release = asyncio.Event()

    @task
    def calculate_required_cpu() -> int:
        return 6

    @task
    async def hold_cores() -> str:
        await release.wait()
        return "held"

    @task
    def train_model() -> str:
        return "Model Trained"

    required_cpu = calculate_required_cpu()
    holding = hold_cores().with_constraints(cpu_cores=4)
    job = train_model().with_constraints(cpu_cores=required_cpu)
    run = asyncio.create_task(engine.run([holding, job]))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, job.task_id)))
    (blocked,) = _of(recorder, TaskBlocked, job.task_id)
    assert [(h.resource, h.amount, h.in_use, h.users) for h in blocked.held_by] == [
        ("cpu_cores", 6, 4, {holding.task_id: 4})
    ]
    release.set()
    assert await run == ["held", "Model Trained"]
    (computed,) = _of(recorder, TaskCompleted, required_cpu.task_id)
    assert recorder.events.index(computed) < recorder.events.index(blocked)


async def test_an_amount_may_be_a_param() -> None:
    """A Param's bound value is the amount; one above the capacity fails the task."""
    engine, _ = _engine()

    @task
    def train_model() -> str:
        return "Model Trained"

    job = train_model().with_constraints(memory_gb=Param("memory", default=16))
    assert await engine.run(job) == "Model Trained"
    with pytest.raises(TaskFailedError, match=r"asks for 48 memory_gb, more than this engine"):
        await engine.run(job, params={"memory": 48})


async def test_a_request_above_the_capacity_fails_at_once_and_skips_its_dependents() -> None:
    """It fails even while the resource is in use (it could never start), names the amount and
    the capacity, never runs; its dependents are skipped, other tasks go on."""
    engine, recorder = _engine()
    release = asyncio.Event()

    @task
    async def hold_gpu() -> int:
        await release.wait()
        return 1

    @task
    def train_model() -> str:
        return "Model Trained"

    @task
    def report(model: str) -> str:
        return model

    holding = hold_gpu().with_constraints(gpu_slots=1)
    too_big = train_model().with_constraints(gpu_slots=1, memory_gb=64)
    run = asyncio.create_task(engine.run([holding, report(too_big)]))
    await recorder.until(lambda: bool(_of(recorder, TaskFailed, too_big.task_id)))
    (failed,) = _of(recorder, TaskFailed, too_big.task_id)
    assert failed.error == (
        "CapacityError: the task asks for 64 memory_gb, more than this engine has "
        "(32: its system_resources)"
    )
    assert isinstance(failed.exception, CapacityError)
    assert isinstance(failed.exception, ValueError)
    assert recorder.names(TaskSkipped) == ["report"]
    release.set()
    with pytest.raises(TaskFailedError) as raised:
        await run
    assert raised.value.task_id == too_big.task_id
    assert not _of(recorder, TaskRunning, too_big.task_id)
    assert recorder.names(TaskCompleted) == ["hold_gpu"]


async def test_a_request_that_cannot_be_had_is_never_held_for_a_decision() -> None:
    """Under on_failure="hold" too it fails: no retry could make it fit."""
    engine, recorder = _engine(on_failure="hold")

    @task
    def train_model() -> str:
        return "Model Trained"

    with pytest.raises(TaskFailedError, match="more than this engine has"):
        await asyncio.wait_for(engine.run(train_model().with_constraints(memory_gb=64)), 5)
    assert recorder.names(TaskFailed) == ["train_model"]


@pytest.mark.parametrize(
    ("resources", "says"),
    [
        (GPU, "a resource this engine has no capacity for (its system_resources: gpu_slots, "
              "memory_gb)"),
        ({}, "a resource this engine has no capacity for (its system_resources: none)"),
    ],
)  # fmt: skip
async def test_a_resource_the_engine_has_not_fails_the_task_naming_it(
    resources: dict[str, float], says: str
) -> None:
    engine, _ = _engine(resources)

    @task
    def train_model() -> str:
        return "Model Trained"

    with pytest.raises(TaskFailedError) as raised:
        await engine.run(train_model().with_constraints(cpu_cores=4))
    assert str(raised.value.exception) == f"the task asks for 4 cpu_cores, {says}"


@pytest.mark.parametrize("bad", [-1, "two", True, math.nan, math.inf, None])
def test_an_amount_written_must_be_a_number_of_at_least_zero(bad: object) -> None:
    @task
    def train_model() -> str:
        return "Model Trained"

    with pytest.raises(CapacityError, match=r"^the amount of gpu_slots must be a number of at"):
        train_model().with_constraints(gpu_slots=bad)
    with pytest.raises(ValueError, match="gpu_slots"):
        train_model.with_constraints(gpu_slots=bad)


async def test_an_amount_of_any_kind_of_number_is_said_as_a_number() -> None:
    """A Fraction (a number, but no float) asked beyond the capacity: its error, not a crash."""
    from fractions import Fraction

    engine, _ = _engine()

    @task
    def train_model() -> str:
        return "Model Trained"

    assert await engine.run(train_model().with_constraints(gpu_slots=Fraction(1, 2))) == (
        "Model Trained"
    )
    with pytest.raises(TaskFailedError, match=r"asks for 1\.5 gpu_slots, more than"):
        await engine.run(train_model().with_constraints(gpu_slots=Fraction(3, 2)))


async def test_an_amount_computed_upstream_that_is_no_number_fails_the_task() -> None:
    engine, _ = _engine({"cpu_cores": 8})

    @task
    def calculate_required_cpu() -> str:
        return "four"

    @task
    def train_model() -> str:
        return "Model Trained"

    with pytest.raises(TaskFailedError) as raised:
        await engine.run(train_model().with_constraints(cpu_cores=calculate_required_cpu()))
    assert isinstance(raised.value.exception, CapacityError)
    assert str(raised.value.exception) == (
        "the amount of cpu_cores must be a number of at least 0, not 'four'"
    )


@pytest.mark.parametrize(
    ("resources", "says"),
    [
        ({"gpu_slots": 0}, "the capacity of gpu_slots must be a number above 0"),
        ({"gpu_slots": -1}, "the capacity of gpu_slots must be a number above 0"),
        ({"gpu_slots": "1"}, "the capacity of gpu_slots must be a number above 0"),
        ({"gpu_slots": True}, "the capacity of gpu_slots must be a number above 0"),
        ({"gpu_slots": math.inf}, "the capacity of gpu_slots must be a number above 0"),
        ({"": 1}, "a resource's name is text"),
        (["gpu_slots"], "system_resources must be a mapping"),
    ],
)
def test_the_engines_capacities_are_checked_when_it_is_made(resources: Any, says: str) -> None:
    with pytest.raises(CapacityError, match=says):
        Engine(system_resources=resources)


async def test_a_failed_attempt_gives_its_amounts_back_before_its_retry_waits_for_them() -> None:
    """Between attempts the GPU is free: a task that waited for it since earlier takes it, and
    the retry waits behind it (BLOCKED, attempt 2)."""
    engine, recorder = _engine()
    release = asyncio.Event()
    calls = 0

    @task
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0)  # the other one blocks meanwhile
            raise ConnectionError("lost the device")
        return "second try"

    @task
    async def other() -> str:
        await release.wait()
        return "other"

    first = flaky().with_constraints(gpu_slots=1).with_retry(2)
    waiting = other().with_constraints(gpu_slots=1)
    run = asyncio.create_task(engine.run([first, waiting]))
    await recorder.until(
        lambda: any(e.attempt == 2 for e in _of(recorder, TaskBlocked, first.task_id))
    )
    assert _of(recorder, TaskRunning, waiting.task_id)
    release.set()
    assert await run == ["second try", "other"]
    assert [e.attempt for e in _of(recorder, TaskRunning, first.task_id)] == [1, 2]


async def test_a_failed_task_gives_its_amounts_back() -> None:
    engine, _ = _engine()

    @task
    def train_model() -> str:
        raise RuntimeError("out of memory")

    @task
    def evaluate() -> str:
        return "evaluated"

    failing = train_model().with_constraints(gpu_slots=1)
    with pytest.raises(TaskFailedError):
        await engine.run([failing, evaluate().with_constraints(gpu_slots=1)])
    assert engine.system_resources_in_use == {"gpu_slots": 0, "memory_gb": 0}
    assert await engine.run(evaluate().with_constraints(gpu_slots=1)) == "evaluated"


async def test_a_cancelled_run_gives_its_amounts_back_and_leaves_the_line() -> None:
    """A cancelled coroutine gives back at once; the run's waiting task keeps no place."""
    engine, recorder = _engine()

    @task
    async def train(i: int) -> int:
        await asyncio.Event().wait()  # until cancelled
        return i

    first = train(1).with_constraints(gpu_slots=1)
    run = asyncio.create_task(engine.run([first, train(2).with_constraints(gpu_slots=1)]))
    await recorder.until(lambda: bool(recorder.names(TaskBlocked)))
    assert engine.system_resources_in_use["gpu_slots"] == 1
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert engine.system_resources_in_use == {"gpu_slots": 0, "memory_gb": 0}

    @task
    def evaluate() -> str:
        return "evaluated"

    assert await engine.run(evaluate().with_constraints(gpu_slots=1)) == "evaluated"


async def test_a_thread_past_its_timeout_keeps_its_amounts_until_it_ends() -> None:
    """Python cannot stop it, and it still uses the GPU: the retry waits for it, BLOCKED by
    its own earlier attempt, and starts when the thread ends."""
    engine, recorder = _engine()
    unblock = threading.Event()
    attempts = 0

    @task
    def infer() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            unblock.wait(10)  # a hung driver call
        return f"attempt {attempts}"

    call = infer().with_constraints(gpu_slots=1).with_timeout(0.05).with_retry(2)
    run = asyncio.create_task(engine.run(call))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, call.task_id)))
    (blocked,) = _of(recorder, TaskBlocked, call.task_id)
    assert blocked.attempt == 2
    assert [(h.resource, h.users) for h in blocked.held_by] == [("gpu_slots", {call.task_id: 1})]
    assert engine.system_resources_in_use["gpu_slots"] == 1
    unblock.set()
    assert await run == "attempt 2"
    await eventually(lambda: engine.system_resources_in_use["gpu_slots"] == 0)


async def test_a_large_request_is_not_starved_by_small_ones() -> None:
    """The big one waits for its memory first; a small one ready later, which would fit, waits
    behind it (its hold names who is ahead) and starts after it."""
    engine, recorder = _engine()
    release, opened = asyncio.Event(), asyncio.Event()

    @task
    async def gate() -> None:
        await opened.wait()

    @task
    async def small(i: int, after: None = None) -> int:
        if i == 1:
            await release.wait()
        return i

    @task
    async def big() -> str:
        return "big"

    first = small(1).with_constraints(memory_gb=8)
    large = big().with_constraints(memory_gb=32)
    later = small(2, gate()).with_constraints(memory_gb=8)
    run = asyncio.create_task(engine.run([first, large, later]))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, large.task_id)))
    opened.set()  # the small one is ready now, after the big one
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, later.task_id)))
    (held,) = _of(recorder, TaskBlocked, later.task_id)
    assert held.held_by == (
        Hold(
            type="resource",
            resource="memory_gb",
            amount=8,
            in_use=8,
            capacity=32,
            users={first.task_id: 8},
            ahead=large.task_id,
        ),
    )
    release.set()
    assert await run == [1, "big", 2]
    mine = (first.task_id, large.task_id, later.task_id)
    running = [task_id for state, task_id in _order(recorder) if state == "TaskRunning"]
    assert [task_id for task_id in running if task_id in mine] == list(mine)


async def test_a_pause_from_the_broker_holds_a_task_whose_amounts_fit() -> None:
    """Both must admit it: a paused task takes no resources and keeps nobody waiting for them;
    on resume it starts once they fit."""
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as controller:
        pause = Constraint.pause("task:train", reason="maintenance")
        await controller.publish(constraint_topic(pause.scope, "pause"), pause, 1, retain=True)
    engine, recorder = _engine(connector=InMemoryConnector(broker, presence=False))

    @task
    def train() -> str:
        return "trained"

    @task
    def evaluate() -> str:
        return "evaluated"

    paused = train().with_constraints(gpu_slots=1)
    run = asyncio.create_task(engine.run([paused, evaluate().with_constraints(gpu_slots=1)]))
    await recorder.until(lambda: recorder.names(TaskCompleted) == ["evaluate"])
    (blocked,) = _of(recorder, TaskBlocked, paused.task_id)
    assert [(h.type, h.scope) for h in blocked.held_by] == [("pause", "task:train")]
    assert engine.system_resources_in_use["gpu_slots"] == 0
    async with InMemoryConnector(broker, presence=False) as controller:
        await controller.publish(constraint_topic("task:train", "pause"), b"", 1, retain=True)
    assert await asyncio.wait_for(run, 5) == ["trained", "evaluated"]


async def test_a_task_waiting_for_resources_takes_no_rate_token() -> None:
    """A rate limit's one token (its clock stands still: no other comes) is still there when
    the GPU comes free: resources are looked at before the broker's constraints."""
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as controller:
        rate = Constraint.rate_limit("task:train", "1/s")
        await controller.publish(constraint_topic(rate.scope, "rate_limit"), rate, 1, retain=True)
    engine, recorder = _engine(
        connector=InMemoryConnector(broker, presence=False), monotonic=lambda: 100.0
    )
    release = asyncio.Event()

    @task
    async def hold_gpu() -> str:
        await release.wait()
        return "held"

    @task
    def train() -> str:
        return "trained"

    waiting = train().with_constraints(gpu_slots=1)
    run = asyncio.create_task(engine.run([hold_gpu().with_constraints(gpu_slots=1), waiting]))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, waiting.task_id)))
    release.set()
    assert await asyncio.wait_for(run, 5) == ["held", "trained"]


async def test_a_task_waiting_for_resources_and_paused_names_both() -> None:
    """Its BLOCKED says the resource it waits for and the pause on its name."""
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as controller:
        pause = Constraint.pause("task:train")
        await controller.publish(constraint_topic(pause.scope, "pause"), pause, 1, retain=True)
    engine, recorder = _engine(connector=InMemoryConnector(broker, presence=False))
    release = asyncio.Event()

    @task
    async def hold_gpu() -> str:
        await release.wait()
        return "held"

    @task
    def train() -> str:
        return "trained"

    holding = hold_gpu().with_constraints(gpu_slots=1)
    paused = train().with_constraints(gpu_slots=1)
    run = asyncio.create_task(engine.run([holding, paused]))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, paused.task_id)))
    (blocked,) = _of(recorder, TaskBlocked, paused.task_id)
    assert [(h.type, h.resource or h.scope) for h in blocked.held_by] == [
        ("resource", "gpu_slots"),
        ("pause", "task:train"),
    ]
    release.set()
    async with InMemoryConnector(broker, presence=False) as controller:
        await controller.publish(constraint_topic("task:train", "pause"), b"", 1, retain=True)
    assert await asyncio.wait_for(run, 5) == ["held", "trained"]


async def test_an_engines_runs_share_its_resources() -> None:
    """Two runs at once on one engine (as served ones are): the second run's task waits for
    the GPU the first run's task holds, and starts when it is given back."""
    engine, recorder = _engine()
    release = asyncio.Event()

    @task
    async def train(i: int) -> int:
        if i == 1:
            await release.wait()
        return i

    first = train(1).with_constraints(gpu_slots=1)
    second = train(2).with_constraints(gpu_slots=1)
    one = asyncio.create_task(engine.run(first))
    await recorder.until(lambda: bool(_of(recorder, TaskRunning, first.task_id)))
    two = asyncio.create_task(engine.run(second))
    await recorder.until(lambda: bool(_of(recorder, TaskBlocked, second.task_id)))
    (blocked,) = _of(recorder, TaskBlocked, second.task_id)
    assert [h.users for h in blocked.held_by] == [{first.task_id: 1}]
    release.set()
    assert (await one, await two) == (1, 2)


async def test_a_task_skipped_by_its_condition_asks_for_nothing() -> None:
    """Its condition is looked at first: skipped, it never asks (not even for a resource the
    engine has not); true, it asks and runs."""
    engine, _ = _engine()

    @task
    def train_model() -> str:
        return "Model Trained"

    go: Param[bool] = Param("go", default=False)
    job = train_model().with_constraints(cpu_cores=4, gpu_slots=1).run_if(go)
    with pytest.raises(DependencyMissingError):  # skipped, not failed: no CapacityError
        await engine.run(job)
    fits = train_model().with_constraints(gpu_slots=1).run_if(go)
    assert await engine.run(fits, params={"go": True}) == "Model Trained"


async def test_a_tasks_request_is_its_own_and_a_later_one_replaces_it() -> None:
    """Task.with_constraints is a copy for every call; a call's own replaces it."""

    @task
    def train_model() -> str:
        return "Model Trained"

    on_gpu = train_model.with_constraints(gpu_slots=1)
    assert train_model().resources is None
    assert on_gpu().resources == (("gpu_slots", 1),)
    assert on_gpu().with_constraints(memory_gb=16).resources == (("memory_gb", 16),)
    assert on_gpu().with_constraints().resources is None
    assert on_gpu.with_retry(3)().resources == (("gpu_slots", 1),)


async def test_the_heartbeat_says_what_a_waiting_task_waits_for_now() -> None:
    """A reader that missed the BLOCKED event learns from the heartbeat's blocked tasks."""
    broker = InMemoryBroker()
    engine, recorder = _engine(
        connector=InMemoryConnector(broker, presence=False), heartbeat_interval=0.05
    )
    release = asyncio.Event()
    seen = asyncio.Event()
    listed: list[Hold] = []

    @task
    async def train(i: int) -> int:
        if i == 1:
            await release.wait()
        return i

    first = train(1).with_constraints(gpu_slots=1)

    def on_heartbeat(message: Any) -> None:
        blocked = message.payload["body"].get("blocked_tasks")
        if blocked:
            listed[:] = [Hold(**hold) for hold in blocked[0]["held_by"]]
            seen.set()

    async with InMemoryConnector(broker, presence=False) as watcher:
        await watcher.subscribe("cascade/telemetry/+/+/+/heartbeat", on_heartbeat)
        run = asyncio.create_task(engine.run([first, train(2).with_constraints(gpu_slots=1)]))
        await asyncio.wait_for(seen.wait(), 5)
    release.set()
    assert await run == [1, 2]
    assert listed == [
        Hold(type="resource", resource="gpu_slots", amount=1, in_use=1, capacity=1,
             users={first.task_id: 1})
    ]  # fmt: skip
    assert recorder.names(TaskBlocked) == ["train"]


_requests = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "gpu_slots": st.sampled_from([0, 1]),
            "memory_gb": st.sampled_from([0, 0.5, 4, 8, 16, 31.5, 32]),
        },
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(_requests, st.integers(min_value=1, max_value=8))
def test_what_runs_at_once_never_exceeds_a_capacity(
    requests: list[dict[str, float]], max_concurrency: int
) -> None:
    """Any mix of requests, coroutines that yield a few times while they hold: the amounts of
    the tasks running at once never add up beyond a capacity, and every task runs."""
    held = dict.fromkeys(GPU, 0.0)
    most = dict.fromkeys(GPU, 0.0)

    @task
    async def work(i: int, asks: dict[str, float]) -> int:
        for resource, amount in asks.items():
            held[resource] += amount
            most[resource] = max(most[resource], held[resource])
        for _ in range(i % 3 + 1):
            await asyncio.sleep(0)
        for resource, amount in asks.items():
            held[resource] -= amount
        return i

    calls = [work(i, asks).with_constraints(**asks) for i, asks in enumerate(requests)]
    engine = Engine(system_resources=GPU, max_concurrency=max_concurrency)
    assert asyncio.run(engine.run(calls)) == list(range(len(requests)))
    assert all(most[resource] <= GPU[resource] for resource in GPU), most
    assert engine.system_resources_in_use == {"gpu_slots": 0, "memory_gb": 0}
