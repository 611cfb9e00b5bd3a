"""@resource and inject: resources set up once a run on first use, torn down at its end."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import (
    Engine,
    Event,
    ResourceAcquired,
    ResourceError,
    ResourceFailed,
    ResourceMissing,
    ResourceReleased,
    RunCancelledError,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskFailedError,
    TaskHeld,
    TaskRunning,
    TaskSkipped,
    inject,
    resource,
    run,
    task,
)


def _recorded(engine: Engine) -> list[Event]:
    events: list[Event] = []
    engine.events.subscribe(events.append)
    return events


class Journal:
    """Resources and tasks that write what happens to them in one list."""

    def __init__(self) -> None:
        self.lines: list[str] = []


@resource
def database_connection() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    conn.execute("INSERT INTO users VALUES (123, 'ada')")
    yield conn
    conn.close()


@task
def get_user(user_id: int, db: Any = inject("database_connection")) -> Any:
    return db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()


@task
def get_user_given(user_id: int, db: Any) -> Any:
    return db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()


async def test_the_existing_engines_example_runs() -> None:
    """A default inject and one passed at call time get the same registered connection."""
    engine = Engine()
    engine.register(database_connection)
    results = await engine.run(
        [get_user(123), get_user_given(123, db=inject("database_connection"))]
    )
    assert results == [(123, "ada"), (123, "ada")]
    assert engine.stats.resources_set_up == 1


async def test_one_setup_for_many_tasks_at_once_async() -> None:
    """Twenty tasks that ask at once wait for one setup of an async resource, and share it."""
    setups: list[object] = []
    gate = asyncio.Event()

    @resource(name="client")
    async def client() -> AsyncIterator[object]:
        await gate.wait()  # opened once every task is waiting for it
        value = object()
        setups.append(value)
        yield value

    @task
    async def use(i: int, client: object = inject("client")) -> object:
        return client

    engine = Engine(resources=[client], max_concurrency=32)
    running = 0

    def on_event(event: Event) -> None:
        nonlocal running
        if isinstance(event, TaskRunning):
            running += 1
            if running == 20:
                gate.set()

    engine.events.subscribe(on_event)
    results = await engine.run([use(i) for i in range(20)])
    assert len(setups) == 1
    assert all(result is setups[0] for result in results)


async def test_one_setup_for_many_tasks_at_once_sync() -> None:
    """A sync resource's setup runs once, in a thread, while twenty sync tasks wait for it: all
    admitted at once, each asks for it before its setup's thread starts (a plain-function
    task says nothing while it waits for its resources: it is RUNNING once a thread starts it,
    so none is RUNNING before the setup ends)."""
    setups: list[str] = []
    threads: list[str] = []
    said: list[int] = []

    @resource
    def pool() -> Iterator[list[str]]:
        said.append(running)
        threads.append(threading.current_thread().name)
        setups.append("set up")
        yield setups

    @task
    def use(i: int, pool: list[str] = inject("pool")) -> int:
        return len(pool)

    engine = Engine(resources=[pool], max_concurrency=32)
    running = 0

    def on_event(event: Event) -> None:
        nonlocal running
        if isinstance(event, TaskRunning):
            running += 1

    engine.events.subscribe(on_event)
    assert await engine.run([use(i) for i in range(20)]) == [1] * 20
    assert setups == ["set up"]
    assert said == [0]
    assert running == 20
    assert threads[0].startswith("cascade-task")  # the run's pool, not the loop's thread


def _journaled(journal: Journal) -> tuple[Any, Any, Any]:
    """Resources a, b (injecting a) and c, each writing its setup and teardown."""

    @resource
    def a() -> Iterator[str]:
        journal.lines.append("set up a")
        yield "a"
        journal.lines.append("tore down a")

    @resource
    async def b(first: str = inject("a")) -> AsyncIterator[str]:
        journal.lines.append("set up b")
        yield first + "b"
        journal.lines.append("tore down b")

    @resource
    def c() -> Iterator[str]:
        journal.lines.append("set up c")
        yield "c"
        journal.lines.append("tore down c")

    return a, b, c


async def test_teardown_at_the_end_the_last_set_up_first() -> None:
    """A resource injecting another is set up after it; all are torn down in reverse order, before
    run() returns."""
    journal = Journal()

    @task
    def both(b: str = inject("b"), c: str = inject("c")) -> str:
        journal.lines.append("task")
        return b + c

    engine = Engine(resources=_journaled(journal))
    assert await engine.run(both()) == "abc"
    assert journal.lines == [
        "set up a",
        "set up b",
        "set up c",
        "task",
        "tore down c",
        "tore down b",
        "tore down a",
    ]


async def test_teardown_when_a_task_fails() -> None:
    """A run that fails still tears down what it set up."""
    journal = Journal()

    @task
    async def broken(b: str = inject("b")) -> str:
        raise ValueError("broken")

    engine = Engine(resources=_journaled(journal))
    with pytest.raises(TaskFailedError, match="broken"):
        await engine.run(broken())
    assert journal.lines == ["set up a", "set up b", "tore down b", "tore down a"]


async def test_teardown_when_the_run_is_cancelled() -> None:
    """A cancelled run tears down its resources before run() raises."""
    journal = Journal()
    started: list[str] = []
    waiting = asyncio.Event()

    @task
    async def forever(c: str = inject("c")) -> None:
        waiting.set()
        await asyncio.Event().wait()

    engine = Engine(resources=_journaled(journal))
    engine.events.subscribe(
        lambda event: started.append(event.run_id) if isinstance(event, RunStarted) else None
    )
    running = asyncio.create_task(engine.run(forever()))
    await waiting.wait()
    assert engine.cancel(started[0], issued_by="test") is not None
    with pytest.raises(RunCancelledError):
        await running
    assert journal.lines == ["set up c", "tore down c"]


async def test_a_run_cancelled_during_a_sync_setup_tears_it_down_when_it_ends() -> None:
    """The run's end does not wait for a setup in its thread; that setup is torn down once it
    ends, in its thread."""
    entered, release, torn_down = threading.Event(), threading.Event(), threading.Event()
    started: list[str] = []

    @resource
    def slow() -> Iterator[str]:
        entered.set()
        assert release.wait(10)
        yield "slow"
        torn_down.set()

    @task
    def needs(value: str = inject("slow")) -> str:
        return value

    engine = Engine(resources=[slow])
    events = _recorded(engine)
    engine.events.subscribe(
        lambda event: started.append(event.run_id) if isinstance(event, RunStarted) else None
    )
    run = asyncio.create_task(engine.run(needs()))
    assert await asyncio.to_thread(entered.wait, 10)  # its setup runs in its thread
    engine.cancel(started[0], issued_by="test")
    with pytest.raises(RunCancelledError):
        await run
    assert not torn_down.is_set()
    cancelled = [e for e in events if isinstance(e, TaskCancelled)]
    assert [e.error for e in cancelled] == [
        "RunCancelledError: run " + started[0] + " was cancelled by test"
    ]  # no thread of its own ran
    release.set()
    assert await asyncio.to_thread(torn_down.wait, 10)
    assert engine.stats.resources_set_up == 0  # its run had ended: no task got it


async def test_a_setup_that_fails_fails_the_tasks_that_need_it() -> None:
    """Each task that injects it fails with ResourceFailed (its cause the setup's error), without
    retries; their dependents are skipped; the others run; the setup ran once."""
    calls: list[str] = []

    @resource
    async def flaky() -> AsyncIterator[str]:
        calls.append("setup")
        if calls:
            raise ConnectionError("refused")
        yield "never"

    @task
    async def needs(i: int, conn: str = inject("flaky")) -> str:
        return conn

    @task
    async def after(value: str) -> str:
        return value

    @task
    async def alone() -> str:
        return "ran"

    engine = Engine(resources=[flaky])
    events = _recorded(engine)
    first = needs.with_retry(3)(1)
    with pytest.raises(TaskFailedError) as raised:
        await engine.run([after(first), needs(2), alone()])
    assert calls == ["setup"]
    failed = [e for e in events if isinstance(e, TaskFailed)]
    assert sorted(e.task_id for e in failed) == sorted([first.task_id, raised.value.failed[1]])
    for event in failed:
        assert isinstance(event.exception, ResourceFailed)
        assert isinstance(event.exception.__cause__, ConnectionError)
        assert event.error == (
            "ResourceFailed: resource 'flaky' failed at its setup: ConnectionError: refused"
        )
        assert event.attempt == 1
    assert [e.task_name for e in events if isinstance(e, TaskSkipped)] == ["after"]
    assert [e.task_name for e in events if isinstance(e, TaskCompleted)] == ["alone"]


async def test_a_task_that_holds_is_held_when_its_resource_failed() -> None:
    """on_failure="hold" applies: a decision completes it with a value, and the run succeeds."""

    attempts: list[str] = []

    @resource
    async def down() -> AsyncIterator[str]:
        attempts.append("setup")
        if attempts:
            raise ConnectionError("down")
        yield "never"

    @task(on_failure="hold")
    async def needs(conn: str = inject("down")) -> str:
        return conn

    engine = Engine(resources=[down])
    held: list[TaskHeld] = []
    waiting = asyncio.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, TaskHeld):
            held.append(event)
            waiting.set()

    engine.events.subscribe(on_event)
    running = asyncio.create_task(engine.run(needs()))
    await waiting.wait()
    assert held[0].error is not None
    assert held[0].error.startswith("ResourceFailed: resource 'down' failed at its setup")
    reply = engine.decide(held[0].run_id, "needs", "complete", result="by hand")
    assert reply is not None
    assert reply.applied
    assert await running == "by hand"


def test_the_synchronous_shortcut_takes_resources() -> None:
    """run(target, resources=[...]) registers them on the engine it makes."""
    assert run(get_user(123), resources=[database_connection]) == (123, "ada")


async def test_a_resource_that_does_not_yield_fails_its_tasks() -> None:
    """A generator that ends without yielding is a setup failure saying so."""

    @resource
    def empty() -> Iterator[str]:
        yield from ()

    @task
    def needs(conn: str = inject("empty")) -> str:
        return conn

    engine = Engine(resources=[empty])
    with pytest.raises(TaskFailedError, match="ended without yielding a value"):
        await engine.run(needs())


async def test_a_missing_resource_fails_the_run_before_anything_runs() -> None:
    """Not registered: ResourceMissing naming the task and the resource, no event at all."""
    engine = Engine(resources=[database_connection])
    events = _recorded(engine)

    @task
    def load(db: Any = inject("warehouse")) -> None:
        raise AssertionError("never runs")

    lazy = load()
    with pytest.raises(ResourceMissing) as raised:
        await engine.run(lazy)
    assert str(raised.value) == (
        f"task 'load' ({lazy.task_id}) injects resource 'warehouse', which is not registered "
        "(engine.register it; registered: database_connection)"
    )
    assert isinstance(raised.value, LookupError)
    assert events == []
    with pytest.raises(ResourceMissing, match="injects resource 'cache'"):
        await engine.run(get_user_given(1, db=[inject("cache")]))
    assert events == []


async def test_resources_that_inject_a_missing_one_or_each_other() -> None:
    """A resource's own injects are checked as well: missing, or in a cycle."""

    @resource
    def needs_config(config: str = inject("config")) -> Iterator[str]:
        yield config

    @resource
    def ping(other: str = inject("pong")) -> Iterator[str]:
        yield other

    @resource
    def pong(other: str = inject("ping")) -> Iterator[str]:
        yield other

    @task
    def uses(value: str) -> str:
        return value

    engine = Engine(resources=[needs_config, ping, pong])
    with pytest.raises(ResourceMissing, match="resource 'needs_config' injects resource 'config'"):
        await engine.run(uses(inject("needs_config")))
    with pytest.raises(ResourceMissing, match="in a cycle: ping -> pong -> ping"):
        await engine.run(uses(inject("ping")))


async def test_a_value_passed_for_an_inject_default_is_taken_as_it_is() -> None:
    """A call that gives the parameter a value needs no resource: none is set up or required."""
    engine = Engine()  # no resource registered: none is needed
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    conn.execute("INSERT INTO users VALUES (7, 'grace')")
    assert await engine.run([get_user(7, db=conn), get_user(7, conn)]) == [(7, "grace")] * 2
    assert engine.stats.resources_set_up == 0


async def test_injects_nested_in_an_argument() -> None:
    """An inject inside a list or dict argument is replaced too."""

    @resource
    async def token() -> AsyncIterator[str]:
        yield "secret"

    @task
    async def headers(given: dict[str, list[str]]) -> dict[str, list[str]]:
        return given

    engine = Engine(resources=[token])
    result = await engine.run(headers({"auth": [inject("token"), "plain"]}))
    assert result == {"auth": ["secret", "plain"]}


async def test_a_retry_gets_the_resource_again_not_a_kept_value() -> None:
    """A retried attempt injects again (from the one setup); the retry keeps the inject."""
    seen: list[object] = []

    @resource
    async def handle() -> AsyncIterator[object]:
        yield object()

    @task
    async def shaky(h: object = inject("handle")) -> str:
        seen.append(h)
        if len(seen) == 1:
            raise OSError("once")
        return "ok"

    engine = Engine(resources=[handle])
    assert await engine.run(shaky.with_retry(2)()) == "ok"
    assert len(seen) == 2
    assert seen[0] is seen[1]
    assert engine.stats.resources_set_up == 1


async def test_a_teardown_that_raises_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The run still succeeds; the other resources are still torn down."""
    journal = Journal()

    @resource
    def bad() -> Iterator[str]:
        yield "bad"
        raise RuntimeError("cannot close")

    @resource
    async def twice() -> AsyncIterator[str]:
        yield "twice"
        yield "again"

    @task
    def both(b: str = inject("bad"), t: str = inject("twice"), c: str = inject("c")) -> str:
        return b + t + c

    engine = Engine(resources=[bad, twice, _journaled(journal)[2]])
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        assert await engine.run(both()) == "badtwicec"
    assert engine.stats.resource_teardowns_failed == 2
    assert journal.lines == ["set up c", "tore down c"]
    said = [r.getMessage() for r in caplog.records]
    assert any("resource bad failed at its teardown: RuntimeError: cannot close" in s for s in said)
    assert any("resource twice failed at its teardown" in s and "more than once" in s for s in said)


async def test_each_run_sets_up_its_own() -> None:
    """Two runs, two setups and two teardowns; a later register replaces a resource of that name."""
    journal = Journal()
    a = _journaled(journal)[0]

    @task
    def use(value: str = inject("a")) -> str:
        return value

    engine = Engine()
    engine.register(a)
    assert await engine.run(use()) == "a"
    assert await engine.run(use()) == "a"
    assert journal.lines == ["set up a", "tore down a"] * 2

    @resource(name="a")
    def fake() -> Iterator[str]:
        yield "fake"

    engine.register(fake)
    assert await engine.run(use()) == "fake"


async def test_an_injected_value_is_no_input_of_a_fingerprint() -> None:
    """A task with injects has a fingerprint (its resources' names, not their values), and a
    rerun reuses its result without setting anything up."""
    connections: list[object] = []

    @resource
    async def conn() -> AsyncIterator[object]:
        value = object()  # a value no fingerprint could encode
        connections.append(value)
        yield value

    @task
    async def count(n: int, c: object = inject("conn")) -> int:
        return n

    @task
    async def total(n: int, c: object) -> int:
        return n + 1

    engine = Engine(results=f"memory://inject-{uuid.uuid4().hex}", resources=[conn])
    started: list[str] = []
    engine.events.subscribe(
        lambda event: started.append(event.run_id) if isinstance(event, RunStarted) else None
    )
    events = _recorded(engine)
    assert await engine.run([count(3), total(4, inject("conn"))]) == [3, 5]
    assert [e.not_kept for e in events if isinstance(e, TaskCompleted)] == [None, None]
    manifest = engine.results.manifest(started[0]) if engine.results else None
    assert manifest is not None
    assert all(t.fingerprint for t in manifest.tasks.values())
    del events[:]
    assert await engine.run([count(3), total(4, inject("conn"))], rerun_of=started[0]) == [3, 5]
    assert [e.reused_from for e in events if isinstance(e, TaskCompleted)] == [started[0]] * 2
    assert len(connections) == 1  # the rerun needed no resource


def test_what_is_no_resource_is_refused_naming_it() -> None:
    """Not a generator, a parameter nothing fills, a name that is none, a register of a function."""

    def plain() -> str:
        return "x"

    with pytest.raises(ResourceError, match=r"resource plain: .*must be a generator function"):
        resource(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter url has no default"):

        @resource
        def needs_url(url: str) -> Iterator[str]:
            yield url

    with pytest.raises(ResourceError, match="inject takes a resource's name"):
        inject(3)  # type: ignore[arg-type]
    with pytest.raises(ResourceError, match=r"not function.*\(decorate it with @resource\)"):
        Engine().register(plain)  # type: ignore[arg-type]
    with pytest.raises(ResourceError, match="parameter db is positional-only"):

        @task
        def positional(db: Any = inject("db"), /) -> None:
            return None


@resource
def _settings() -> Iterator[dict[str, int]]:
    yield {"port": 5432}


@resource
async def _pool(config: Any = inject("_settings")) -> AsyncIterator[str]:
    yield f"pool:{config['port']}"


@resource
def _leaky() -> Iterator[int]:
    yield 1
    raise OSError("cannot close")


@task
def _uses_pool(pool: Any = inject("_pool")) -> str:
    return str(pool)


@task
def _uses_leaky(value: Any = inject("_leaky")) -> int:
    return int(value)


async def test_resources_acquired_and_released_are_announced_on_the_engines_events() -> None:
    """ResourceAcquired once per resource as it is set up (what it injects first), and
    ResourceReleased as it is torn down, the last set up first, before the run ends; a
    teardown that raises is no release."""
    engine = Engine()
    for found in (_settings, _pool, _leaky):
        engine.register(found)
    events = _recorded(engine)
    assert await engine.run([_uses_pool(), _uses_pool(), _uses_leaky()]) == ["pool:5432"] * 2 + [1]
    run_id = events[0].run_id
    acquired = [e.resource_name for e in events if isinstance(e, ResourceAcquired)]
    released = [e.resource_name for e in events if isinstance(e, ResourceReleased)]
    assert sorted(acquired) == ["_leaky", "_pool", "_settings"]
    assert acquired.index("_settings") < acquired.index("_pool")
    assert released == [name for name in reversed(acquired) if name != "_leaky"]
    assert all(
        e.run_id == run_id for e in events if isinstance(e, ResourceAcquired | ResourceReleased)
    )
    kinds = [type(e) for e in events]
    last_release = max(i for i, kind in enumerate(kinds) if kind is ResourceReleased)
    assert kinds.index(RunFinished) > last_release
    assert engine.stats.resource_teardowns_failed == 1


async def test_resource_events_stay_off_the_wire() -> None:
    """With a connector: the events topic carries the run's and its tasks' events, numbered
    without a gap, and nothing for its resources."""
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, source_id="host", presence=False)
    engine = Engine(connector, org_id="acme", project_id="shop", heartbeat_interval=None)
    engine.register(_settings)
    engine.register(_pool)
    events = _recorded(engine)
    await engine.run(_uses_pool())
    assert sum(isinstance(e, ResourceAcquired | ResourceReleased) for e in events) == 4
    wire = [
        json.loads(m.raw)
        for m in broker.history
        if m.topic == f"cascade/telemetry/acme/shop/{events[0].run_id}/events"
    ]
    assert [raw["body"].get("state", raw["body"].get("event")) for raw in wire] == [
        "ENGINE_STARTED",
        "RUNNING",
        "COMPLETED",
        "ENGINE_STOPPED",
    ]
    assert [raw["seq"] for raw in wire] == [1, 2, 3, 4]
