"""Constraints published over the broker steer a running engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import (
    Engine,
    Event,
    RunCounters,
    RunFinished,
    TaskBlocked,
    TaskEvent,
    TaskRunning,
    task,
)

# The exact payloads of docs/protocol.md, as the existing Cascade tools publish them.
LEGACY = {
    "cascade/constraints/global": b'{"id": "pause-global", "scope": "global", "type": "pause", '
    b'"params": {}, "expires_at": null}',
    "cascade/constraints/task/api_*": b'{"id": "concurrency-task:api_*", "scope": "task:api_*", '
    b'"type": "concurrency", "params": {"limit": 2}, "expires_at": null}',
    "cascade/constraints/task/api_call": b'{"id": "ratelimit-task:api_call", '
    b'"scope": "task:api_call", "type": "rate_limit", "params": {"rate": "10/m"}, '
    b'"expires_at": 1795216272.19}',
}


class Harness:
    """An engine on an in-memory broker, a controller client, and the engine's events."""

    def __init__(self, broker: InMemoryBroker, controller: InMemoryConnector) -> None:
        self.broker = broker
        self.controller = controller
        self.events: list[Event] = []
        self.blocked = asyncio.Event()
        self._changed = asyncio.Event()

    def engine(self, **kwargs: Any) -> Engine:
        kwargs.setdefault("heartbeat_interval", None)
        engine = Engine(InMemoryConnector(self.broker, presence=False), **kwargs)
        engine.events.subscribe(self._record)
        return engine

    def _record(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        if isinstance(event, TaskBlocked):
            self.blocked.set()

    async def publish(self, constraint: Constraint, *, typed: bool = True) -> str:
        topic = constraint_topic(constraint.scope, constraint.type if typed else None)
        await self.controller.publish(topic, constraint, qos=1, retain=True)
        await self.broker.idle()
        return topic

    async def clear(self, topic: str) -> None:
        await self.controller.publish(topic, b"", qos=1, retain=True)
        await self.broker.idle()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait, woken by each event, until ``predicate`` holds."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def states(self, name: str) -> list[str]:
        return [e.state for e in self.events if isinstance(e, TaskEvent) and e.task_name == name]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    broker = InMemoryBroker()
    controller = InMemoryConnector(broker, presence=False)
    await controller.connect()
    yield Harness(broker, controller)
    await controller.disconnect()


@task
async def slow(x: int) -> int:
    return x


@task
async def fast(x: int) -> int:
    return x


async def test_retained_pause_holds_matching_tasks_until_cleared(harness: Harness) -> None:
    """A pause retained before the run holds matching tasks (one BLOCKED each) until cleared."""
    topic = await harness.publish(Constraint.pause("task:slow"))
    engine = harness.engine()
    run = asyncio.create_task(engine.run([slow(1), fast(2), fast(3)]))
    await harness.until(lambda: harness.states("fast").count("COMPLETED") == 2)  # not held
    assert harness.states("slow") == ["BLOCKED"]
    await harness.clear(topic)
    assert await run == [1, 2, 3]
    assert harness.states("slow") == ["BLOCKED", "RUNNING", "COMPLETED"]


async def test_blocked_is_emitted_once_per_task(harness: Harness) -> None:
    """Many scheduler wake-ups while held still give one BLOCKED per deferred task."""
    topic = await harness.publish(Constraint.pause("task:slow"))
    engine = harness.engine(max_concurrency=2)
    run = asyncio.create_task(engine.run([slow(1), slow(2), *[fast(i) for i in range(20)]]))
    await harness.until(lambda: harness.states("fast").count("COMPLETED") == 20)
    await harness.publish(Constraint.concurrency("task:other", 1))  # another wake-up
    await harness.clear(topic)
    await run
    blocked = [e.task_id for e in harness.events if isinstance(e, TaskBlocked)]
    assert len(blocked) == 2
    assert len(set(blocked)) == 2
    assert sorted(harness.states("slow")) == sorted(["BLOCKED", "RUNNING", "COMPLETED"] * 2)


async def test_blocked_only_for_tasks_a_free_slot_would_start(harness: Harness) -> None:
    """A pause over a backlog emits BLOCKED for as many tasks as there are free slots."""
    topic = await harness.publish(Constraint.pause("global"))
    engine = harness.engine(max_concurrency=3)
    run = asyncio.create_task(engine.run([fast(i) for i in range(100)]))
    await harness.blocked.wait()
    await harness.broker.idle()
    assert harness.states("fast") == ["BLOCKED"] * 3
    await harness.clear(topic)
    assert await run == list(range(100))
    assert harness.states("fast").count("BLOCKED") == 3
    assert harness.states("fast").count("COMPLETED") == 100


async def test_protocol_examples_steer_the_engine(harness: Harness) -> None:
    """docs/protocol.md's payloads on their legacy topics are applied; clearing resumes the run."""
    for topic, raw in LEGACY.items():
        await harness.controller.publish(topic, raw, qos=1, retain=True)
    engine = harness.engine(clock=lambda: 1795216000.0)  # before the example's expires_at

    @task
    async def api_call() -> str:
        return "called"

    run = asyncio.create_task(engine.run([api_call(), fast(1)]))
    await harness.blocked.wait()
    assert {(c.id, c.type) for c in engine.constraints} == {
        ("pause-global", "pause"),
        ("concurrency-task:api_*", "concurrency"),
        ("ratelimit-task:api_call", "rate_limit"),
    }
    assert engine.stats.rejected_control == 0
    await harness.clear("cascade/constraints/global")
    assert await run == ["called", 1]
    assert [c.type for c in engine.constraints] == []


async def test_concurrency_limit_published_mid_run_is_obeyed(harness: Harness) -> None:
    """Tasks that start after a live concurrency limit never exceed it."""
    gate = asyncio.Event()
    running = 0
    first_wave = asyncio.Event()
    late_starts: list[int] = []
    limited = False

    @task
    async def work(i: int) -> int:
        nonlocal running
        running += 1
        if limited:
            late_starts.append(running)
        if running == 4:
            first_wave.set()
        await gate.wait()
        await asyncio.sleep(0)
        running -= 1
        return i

    engine = harness.engine(max_concurrency=4)
    run = asyncio.create_task(engine.run([work(i) for i in range(10)]))
    await first_wave.wait()
    await harness.publish(Constraint.concurrency("task:wor?", 2))
    limited = True
    gate.set()
    assert await run == list(range(10))
    assert len(late_starts) == 6
    assert max(late_starts) <= 2


async def test_pause_and_limit_coexist(harness: Harness) -> None:
    """A pause and a limit on one scope both hold; clearing the pause leaves the limit in force."""
    running = peak = 0

    @task
    async def job(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1
        return i

    pause_topic = await harness.publish(Constraint.pause("task:job"))
    await harness.publish(Constraint.concurrency("task:job", 1))
    engine = harness.engine()
    run = asyncio.create_task(engine.run([job(i) for i in range(5)]))
    await harness.blocked.wait()
    assert harness.states("job") == ["BLOCKED"] * 5
    await harness.clear(pause_topic)
    assert await run == list(range(5))
    assert peak == 1
    assert harness.states("job").count("BLOCKED") == 5


async def test_expiry_releases_tasks_by_itself(harness: Harness) -> None:
    """A pause with expires_at holds tasks until then, without being cleared."""
    await harness.publish(Constraint.pause("global", expires_at=time.time() + 0.1))
    engine = harness.engine()
    assert await engine.run([fast(1), slow(2)]) == [1, 2]
    assert harness.states("fast")[0] == "BLOCKED"
    assert engine.stats.expired == 1


async def test_rate_limit_spaces_task_starts(harness: Harness) -> None:
    """20/s with capacity 1 lets 4 tasks through one token at a time, each BLOCKED once."""
    await harness.publish(Constraint.rate_limit("task:fast", "20/s", capacity=1))
    engine = harness.engine()
    begun = time.monotonic()
    assert await engine.run([fast(i) for i in range(4)]) == [0, 1, 2, 3]
    # The bucket (full: one token) admits by the same clock: three more tokens take 150 ms.
    assert time.monotonic() - begun >= 0.149
    assert harness.states("fast").count("BLOCKED") == 3


async def test_rate_below_one_per_second_does_not_block_forever(harness: Harness) -> None:
    """30/m (0.5/s) lets the second task start after about two seconds, not never."""
    await harness.publish(Constraint.rate_limit("task:slow", "30/m"))
    engine = harness.engine()
    started = time.monotonic()
    assert await asyncio.wait_for(engine.run([slow(1), slow(2)]), 30) == [1, 2]
    assert time.monotonic() - started >= 1.9
    assert harness.states("slow").count("BLOCKED") == 1


async def test_bad_messages_over_the_broker_change_nothing(harness: Harness) -> None:
    """Malformed control messages during a run are counted; the pause in force holds."""
    topic = await harness.publish(Constraint.pause("global"))
    engine = harness.engine()
    run = asyncio.create_task(engine.run(fast(1)))
    await harness.blocked.wait()
    for raw in (b"not json", b"[1]", b'{"id": "x", "scope": "global", "type": "explode"}'):
        await harness.controller.publish(topic, raw)
    await harness.controller.publish(
        "cascade/constraints/global/concurrency",
        b'{"id": "c", "scope": "global", "type": "concurrency", "params": {"limit": -1}}',
    )
    await harness.broker.idle()
    assert engine.stats.rejected_control == 2  # the two that were JSON objects
    assert engine.connector is not None
    assert engine.connector.stats.rejected == 2
    assert [c.type for c in engine.constraints] == ["pause"]
    assert harness.states("fast") == ["BLOCKED"]
    await harness.clear(topic)
    assert await run == 1


class Flaky:
    """A task that fails its first ``failures`` attempts, awaiting ``during()`` in each."""

    def __init__(
        self, name: str, failures: int, during: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.failures = failures
        self.during = during
        self.calls = 0
        self.task = task(name=name)(self.attempt)

    async def attempt(self) -> str:
        self.calls += 1
        if self.during is not None:
            await self.during()
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return "ok"


def attempts(harness: Harness, name: str) -> list[tuple[str, int]]:
    return [
        (e.state, e.attempt)
        for e in harness.events
        if isinstance(e, TaskEvent) and e.task_name == name
    ]


def reached(harness: Harness, attempt: int) -> Callable[[], bool]:
    """True once ``attempt`` was BLOCKED or started, or the run ended (a bug fails fast)."""
    return lambda: any(
        (isinstance(e, (TaskBlocked, TaskRunning)) and e.attempt == attempt)
        or isinstance(e, RunFinished)
        for e in harness.events
    )


async def test_each_retry_takes_a_rate_limit_token(harness: Harness) -> None:
    """Under 1/m every attempt waits for its own token; each held attempt is BLOCKED once."""
    now = [0.0]
    await harness.publish(Constraint.rate_limit("task:api_call", "1/m"))
    engine = harness.engine(monotonic=lambda: now[0])
    api_call = Flaky("api_call", failures=2)
    run = asyncio.create_task(engine.run(api_call.task.with_retry(max_attempts=3)()))
    for attempt in (2, 3):
        await harness.until(reached(harness, attempt))
        assert api_call.calls == attempt - 1
        now[0] += 60
        await harness.publish(Constraint.rate_limit("task:api_call", "1/m"))  # a wake-up
    assert await run == "ok"
    assert attempts(harness, "api_call") == [
        ("RUNNING", 1),
        ("RETRYING", 1),
        ("BLOCKED", 2),
        ("RUNNING", 2),
        ("RETRYING", 2),
        ("BLOCKED", 3),
        ("RUNNING", 3),
        ("COMPLETED", 3),
    ]


async def test_pause_between_attempts_holds_the_next_attempt(harness: Harness) -> None:
    """A pause that comes while an attempt runs lets it end, and holds the next until cleared."""

    async def pause() -> None:
        await harness.publish(Constraint.pause("task:flaky"))

    flaky = Flaky("flaky", failures=1, during=pause)
    engine = harness.engine()
    counters = RunCounters()
    seen: dict[tuple[str, int], tuple[int, int, int]] = {}

    def snapshot(event: Event) -> None:
        counters.update(event, 1)
        if isinstance(event, TaskEvent):
            seen[event.state, event.attempt] = (
                counters.running,
                counters.blocked,
                counters.pending,
            )

    engine.events.subscribe(snapshot)
    run = asyncio.create_task(engine.run(flaky.task.with_retry(max_attempts=2)()))
    await harness.until(reached(harness, 2))
    await harness.broker.idle()
    assert flaky.calls == 1
    topic = constraint_topic("task:flaky", "pause")
    await harness.clear(topic)
    assert await run == "ok"
    assert attempts(harness, "flaky") == [
        ("RUNNING", 1),
        ("RETRYING", 1),
        ("BLOCKED", 2),
        ("RUNNING", 2),
        ("COMPLETED", 2),
    ]
    # (running, blocked, pending) as the heartbeat would report them after each event
    assert seen == {
        ("RUNNING", 1): (1, 0, 0),
        ("RETRYING", 1): (0, 0, 1),
        ("BLOCKED", 2): (0, 1, 0),
        ("RUNNING", 2): (1, 0, 0),
        ("COMPLETED", 2): (0, 0, 0),
    }


async def test_concurrency_limit_counts_retries(harness: Harness) -> None:
    """A retry does not start while a concurrency limit it falls under is full."""
    gate = asyncio.Event()

    async def limit() -> None:
        await harness.publish(Constraint.concurrency("task:job_*", 1))

    @task(name="job_b")
    async def job_b() -> str:
        await gate.wait()
        return "b"

    job_a = Flaky("job_a", failures=1, during=limit)
    engine = harness.engine()
    run = asyncio.create_task(engine.run([job_a.task.with_retry(max_attempts=2)(), job_b()]))
    await harness.until(reached(harness, 2))
    assert job_a.calls == 1
    assert attempts(harness, "job_a") == [("RUNNING", 1), ("RETRYING", 1), ("BLOCKED", 2)]
    gate.set()
    assert await run == ["ok", "b"]
    assert attempts(harness, "job_a")[-2:] == [("RUNNING", 2), ("COMPLETED", 2)]


async def test_max_concurrency_bounds_attempts_in_flight() -> None:
    """Between attempts a task holds no slot of max_concurrency; its retry waits for one."""
    running = peak = 0

    async def count() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    @task
    async def other() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)  # outlasts the retry's delay: the retry must wait for the slot
        running -= 1
        return "other"

    flaky = Flaky("flaky", failures=1, during=count)
    engine = Engine(max_concurrency=1, heartbeat_interval=None)
    events: list[Event] = []
    engine.events.subscribe(events.append)
    run = engine.run([flaky.task.with_retry(max_attempts=2, delay=0.01)(), other()])
    assert await asyncio.wait_for(run, 10) == ["ok", "other"]
    assert peak == 1
    assert [(e.task_name, e.state) for e in events if isinstance(e, TaskRunning)] == [
        ("flaky", "RUNNING"),
        ("other", "RUNNING"),  # in the retry's delay
        ("flaky", "RUNNING"),
    ]


@pytest.mark.parametrize("waiting_for", ["delay", "admission"])
async def test_cancelling_a_run_with_a_pending_retry_ends_it_promptly(
    harness: Harness, waiting_for: str
) -> None:
    """A retry waiting for its delay or for a constraint does not hold up the run's cancellation."""

    async def pause() -> None:
        if waiting_for == "admission":
            await harness.publish(Constraint.pause("global"))

    flaky = Flaky("flaky", failures=1, during=pause)
    delay = 600 if waiting_for == "delay" else 0
    engine = harness.engine()
    run = asyncio.create_task(engine.run(flaky.task.with_retry(max_attempts=2, delay=delay)()))
    if waiting_for == "delay":
        await harness.until(lambda: ("RETRYING", 1) in attempts(harness, "flaky"))
    else:
        await harness.until(reached(harness, 2))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 5)
    assert flaky.calls == 1
    finished = [e for e in harness.events if isinstance(e, RunFinished)]
    assert [e.status for e in finished] == ["Cancelled"]


async def test_a_retry_goes_ahead_of_tasks_not_yet_started() -> None:
    """A due retry starts before ready tasks of its name that have not started yet."""
    flaky = Flaky("job", failures=1)
    order: list[str] = []

    @task(name="job")
    async def job(i: int) -> int:
        order.append(f"job {i}")
        return i

    async def record() -> None:
        order.append(f"flaky {flaky.calls}")

    flaky.during = record
    engine = Engine(max_concurrency=1, heartbeat_interval=None)
    assert await engine.run([flaky.task.with_retry(max_attempts=2)(), job(1), job(2)]) == [
        "ok",
        1,
        2,
    ]
    assert order == ["flaky 1", "flaky 2", "job 1", "job 2"]
