"""Tasks: the decorator, concurrency, threads, retries and failure propagation."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from cascade.runtime import (
    Engine,
    Event,
    LazyResult,
    RetryPolicy,
    TaskEvent,
    TaskFailedError,
    TaskSkipped,
    task,
)


@task
def plain(x: int) -> int:
    return x + 1


@task(name="renamed")
def named(x: int) -> int:
    return x


def states(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.task_name, e.state) for e in events if isinstance(e, TaskEvent)]


async def test_decorator_with_and_without_arguments() -> None:
    """@task and @task(name=...) both make factories of lazy results with a name and an id."""
    a, b = plain(1), named(2)
    assert isinstance(a, LazyResult)
    assert (a.name, b.name) == ("plain", "renamed")
    assert a.task_id != plain(1).task_id
    assert a.task_id == a.task_id
    assert a.task_id.startswith("plain-")
    assert await Engine().run([a, b]) == [2, 2]


async def test_sync_tasks_run_in_threads() -> None:
    """A sync task runs off the event loop's thread."""

    @task
    def where() -> int:
        return threading.get_ident()

    assert await Engine().run(where()) != threading.get_ident()


async def test_independent_tasks_run_concurrently() -> None:
    """Two independent tasks that each wait for the other both finish."""
    first, second = asyncio.Event(), asyncio.Event()

    @task
    async def meet(mine: asyncio.Event, other: asyncio.Event) -> str:
        mine.set()
        await asyncio.wait_for(other.wait(), 5)
        return "met"

    assert await Engine().run([meet(first, second), meet(second, first)]) == ["met", "met"]


async def test_max_concurrency_is_respected() -> None:
    """No more than max_concurrency tasks run at once."""
    running = peak = 0

    @task
    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    await Engine(max_concurrency=3).run([work() for _ in range(20)])
    assert peak == 3


async def test_retry_until_success() -> None:
    """A task that fails twice then succeeds is retried and emits RETRYING per failed attempt."""
    attempts = 0

    @task
    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError(f"try {attempts}")
        return "ok"

    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    assert await engine.run(flaky.with_retry(max_attempts=3, delay=0)()) == "ok"
    task_events = [e for e in events if isinstance(e, TaskEvent)]
    assert [(e.state, e.attempt) for e in task_events] == [
        ("RUNNING", 1),
        ("RETRYING", 1),
        ("RUNNING", 2),
        ("RETRYING", 2),
        ("RUNNING", 3),
        ("COMPLETED", 3),
    ]
    assert task_events[1].error == "ConnectionError: try 1"


async def test_retries_exhausted_fail() -> None:
    """A task failing on every attempt fails the run after max_attempts tries."""
    attempts = 0

    @task
    def always() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("nope")

    with pytest.raises(TaskFailedError):
        await Engine().run(always.with_retry(max_attempts=2)())
    assert attempts == 2


def test_retry_policy_backoff() -> None:
    """Retry delays grow by the backoff factor; invalid policies are refused."""
    policy = RetryPolicy(max_attempts=4, delay=0.5, backoff=2.0)
    assert [policy.delay_before(n) for n in (2, 3, 4)] == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff=0.5)
    with pytest.raises(ValueError, match="delay"):
        RetryPolicy(delay=math.nan)
    with pytest.raises(ValueError, match="max_delay"):
        RetryPolicy(max_delay=math.inf)


def test_retry_delays_stop_growing_at_max_delay() -> None:
    """However many attempts, a delay never exceeds max_delay (and never overflows)."""
    policy = RetryPolicy(max_attempts=5000, delay=1.0, backoff=2.0, max_delay=60.0)
    assert [policy.delay_before(n) for n in (2, 7, 8, 9)] == [1.0, 32.0, 60.0, 60.0]
    assert policy.delay_before(5000) == 60.0  # 2.0 ** 4998 overflows a float
    assert RetryPolicy(max_attempts=5000, backoff=2.0).delay_before(5000) == 0.0


async def test_many_retries_without_delay_end_in_a_failure() -> None:
    """Thousands of immediate retries run to the end and fail the run; nothing overflows."""

    @task
    async def always() -> None:
        raise ValueError("nope")

    with pytest.raises(TaskFailedError):
        await Engine().run(always.with_retry(max_attempts=2000)())


async def test_failure_skips_downstream_and_names_the_task() -> None:
    """A failure skips its dependents, independent tasks still run, the error names the task."""
    ran: list[str] = []

    @task
    def boom() -> int:
        raise RuntimeError("kaput")

    @task
    def after(x: int) -> int:
        ran.append("after")
        return x

    @task
    def independent() -> str:
        ran.append("independent")
        return "fine"

    failing = boom()
    downstream = after(after(failing))
    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    with pytest.raises(TaskFailedError) as info:
        await engine.run([downstream, independent()])
    error = info.value
    assert (error.task_name, error.task_id) == ("boom", failing.task_id)
    assert isinstance(error.exception, RuntimeError)
    assert error.__cause__ is error.exception
    assert "boom" in str(error)
    assert "RuntimeError: kaput" in str(error)
    assert ran == ["independent"]
    assert sorted(states(events)) == sorted(
        [
            ("boom", "RUNNING"),
            ("boom", "FAILED"),
            ("after", "SKIPPED"),
            ("after", "SKIPPED"),
            ("independent", "RUNNING"),
            ("independent", "COMPLETED"),
        ]
    )
    skipped = [e for e in events if isinstance(e, TaskEvent) and e.state == "SKIPPED"]
    assert all(failing.task_id in e.error for e in skipped)


async def test_dependent_of_failed_and_completed_is_skipped_once() -> None:
    """A task whose one parent fails and other completes is skipped once, never started."""

    @task
    def boom() -> int:
        raise RuntimeError("x")

    @task
    async def ok() -> int:
        await asyncio.sleep(0)
        return 1

    @task
    def join(a: int, b: int) -> int:
        return a + b

    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    with pytest.raises(TaskFailedError):
        await engine.run(join(boom(), ok()))
    assert [s for n, s in states(events) if n == "join"] == ["SKIPPED"]


async def test_cancelled_error_from_a_task_s_own_code_is_a_failure() -> None:
    """A task's code raising CancelledError fails that task (retries apply); the run ends."""
    attempts = 0

    @task
    async def victim() -> None:
        nonlocal attempts
        attempts += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()  # as if someone else cancelled what the task awaits
        await future

    @task
    async def after(value: None) -> None:
        return value

    engine = Engine()
    events: list[Event] = []
    engine.events.subscribe(events.append)
    with pytest.raises(TaskFailedError) as caught:
        await engine.run(after(victim.with_retry(max_attempts=2)()))
    assert isinstance(caught.value.exception, asyncio.CancelledError)
    assert attempts == 2
    assert [e.task_name for e in events if isinstance(e, TaskSkipped)] == ["after"]


async def test_an_error_inside_the_engine_fails_the_task_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the engine itself raise while running a task, that task fails and the run ends."""

    def broken(value: object, graph: object) -> object:
        raise RuntimeError("engine bug")

    monkeypatch.setattr("cascade.runtime._run.resolve", broken)

    @task
    async def one() -> int:
        return 1

    @task
    async def two(value: int) -> int:
        return value

    with pytest.raises(TaskFailedError, match="engine bug"):
        await Engine().run(two(one()))
