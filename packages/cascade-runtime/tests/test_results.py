"""Results kept by their tasks' fingerprints, and reruns that reuse them."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    RunSnapshot,
    TaskStateEvent,
    decode_envelope,
    telemetry_filter,
)
from cascade.interfaces.commands import SnapshotRequest, snapshot_request_topic
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.summaries import decode_summary, summary_topic
from cascade.runtime import (
    Engine,
    Event,
    RerunError,
    ResultStore,
    RunFinished,
    RunStarted,
    TaskCompleted,
    TaskContext,
    TaskEvent,
    TaskFailedError,
    current_task,
    task,
)
from cascade.runtime.testing import eventually


def memory_url() -> str:
    """A store of its own per test: fsspec's memory file system is one per process."""
    return f"memory://results-{uuid.uuid4().hex}"


class Recorded:
    """Every event of an engine's runs."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[Event] = []
        engine.events.subscribe(self.events.append)

    def run_ids(self) -> list[str]:
        return [e.run_id for e in self.events if isinstance(e, RunStarted)]

    def started(self, run_id: str) -> RunStarted:
        (found,) = [e for e in self.events if isinstance(e, RunStarted) and e.run_id == run_id]
        return found

    def of(self, run_id: str, name: str) -> list[TaskEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, TaskEvent) and e.run_id == run_id and e.task_name == name
        ]

    def completed(self, run_id: str, name: str) -> TaskCompleted:
        (found,) = [e for e in self.of(run_id, name) if isinstance(e, TaskCompleted)]
        return found


class Etl:
    """``load(transform(extract(n)))``, counting each function's calls; ``transform`` fails
    while ``broken``."""

    def __init__(self) -> None:
        self.calls = {"extract": 0, "transform": 0, "load": 0}
        self.broken = False
        self.contexts: dict[str, list[TaskContext | None]] = {"extract": [], "transform": []}

        @task(name="extract")
        def extract(n: int) -> list[int]:  # a thread task
            self.calls["extract"] += 1
            self.contexts["extract"].append(current_task())
            return list(range(n))

        @task(name="transform")
        async def transform(rows: list[int]) -> list[int]:  # a coroutine task
            self.calls["transform"] += 1
            self.contexts["transform"].append(current_task())
            if self.broken:
                raise RuntimeError("the cause")
            return [row * 10 for row in rows]

        @task(name="load")
        async def load(rows: list[int]) -> int:
            self.calls["load"] += 1
            return sum(rows)

        self.extract, self.transform, self.load = extract, transform, load

    def target(self, n: int = 5) -> Any:
        return self.load(self.transform(self.extract(n)))


async def test_a_rerun_keeps_its_runs_name_unless_given_another() -> None:
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    await engine.run(etl.target(), name="nightly")
    (first,) = recorded.run_ids()
    await engine.run(etl.target(), rerun_of=first)
    await engine.run(etl.target(), rerun_of=first, name="by hand")
    names = [recorded.started(run).name for run in recorded.run_ids()]
    assert names == ["nightly", "nightly", "by hand"]


async def test_a_rerun_of_a_failed_run_reuses_what_succeeded_and_runs_the_rest() -> None:
    """transform fails; once fixed, a rerun (12-character id) reuses extract (its function ran
    once in all: COMPLETED at once, reused_from the first run, no RUNNING), runs transform and
    load, and the lineage is in the new run's origin and manifest."""
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target())
    (first,) = recorded.run_ids()
    etl.broken = False
    assert await engine.run(etl.target(), rerun_of=first[:12]) == 100
    second = recorded.run_ids()[1]
    assert etl.calls == {"extract": 1, "transform": 2, "load": 1}
    reused = recorded.of(second, "extract")
    assert [e.state for e in reused] == ["COMPLETED"]
    assert isinstance(reused[0], TaskCompleted)
    assert (reused[0].reused_from, reused[0].duration_ms) == (first, 0.0)
    assert recorded.completed(second, "transform").reused_from is None
    origin = recorded.started(second).origin
    assert origin is not None
    assert (origin.rerun_of, origin.root_run) == (first, first)
    assert recorded.started(second).name == "load"
    assert engine.results is not None
    manifest = engine.results.manifest(second)
    assert (manifest.status, manifest.rerun_of, manifest.root_run) == ("Succeeded", first, first)
    assert manifest.tasks["extract#1"].from_run == first
    assert manifest.tasks["transform#1"].from_run == second
    old = engine.results.manifest(first)
    assert [old.tasks[k].state for k in ("extract#1", "transform#1", "load#1")] == [
        "COMPLETED",
        "FAILED",
        "SKIPPED",
    ]
    assert engine.stats.results_reused == 1
    # a rerun of the rerun: everything reused, from the runs that computed each
    assert await engine.run(etl.target(), rerun_of=second) == 100
    third = recorded.run_ids()[2]
    assert etl.calls == {"extract": 1, "transform": 2, "load": 1}
    assert recorded.completed(third, "extract").reused_from == first
    assert recorded.completed(third, "load").reused_from == second
    assert engine.results.manifest(third).root_run == first


async def test_the_plan_says_what_a_rerun_would_do_and_why() -> None:
    """A dry run: extract reused from the first run, transform runs (it had failed), load runs
    (it was skipped); nothing runs meanwhile."""
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target())
    (first,) = recorded.run_ids()
    plan = await engine.plan(etl.target(), rerun_of=first[:6])
    assert [(s.task_name, s.action, s.from_run) for s in plan] == [
        ("extract", "reuse", first),
        ("transform", "run", None),
        ("load", "run", None),
    ]
    assert plan[1].why == "it had failed"
    assert plan[2].why.startswith("it was skipped")
    assert etl.calls == {"extract": 1, "transform": 1, "load": 0}
    everything = await engine.plan(etl.target(), rerun_of=first, rerun="all")
    assert (everything[0].action, everything[0].why) == ("force", "rerun all")
    downstream = await engine.plan(etl.target(), rerun_of=first, rerun="from", from_task="extract")
    assert [s.action for s in downstream] == ["force", "run", "run"]


async def test_rerun_all_runs_everything_and_rerun_from_forces_a_task_and_downstream() -> None:
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    await engine.run(etl.target())
    (first,) = recorded.run_ids()
    assert engine.results is not None
    transform_id = engine.results.manifest(first).tasks["transform#1"].task_id  # that run's id
    plan = await engine.plan(etl.target(), rerun_of=first, rerun="from", from_task=transform_id)
    assert [(s.action, s.why) for s in plan] == [
        ("reuse", "unchanged"),
        ("force", f"rerun from {transform_id}"),
        ("force", f"rerun from {transform_id}"),
    ]
    await engine.run(etl.target(), rerun_of=first, rerun="all")
    assert etl.calls == {"extract": 2, "transform": 2, "load": 2}
    await engine.run(etl.target(), rerun_of=first, rerun="from", from_task="transform")
    assert etl.calls == {"extract": 2, "transform": 3, "load": 3}
    third = recorded.run_ids()[2]
    assert recorded.completed(third, "extract").reused_from == first


def _fingerprints(engine: Engine, run_id: str) -> dict[str, str | None]:
    assert engine.results is not None
    return {k: t.fingerprint for k, t in engine.results.manifest(run_id).tasks.items()}


async def test_a_fingerprint_changes_with_the_code_and_with_the_input() -> None:
    """Same name, same input: the same fingerprint; another input, or the same name on other
    code: another; and the plan tells which changed."""

    @task(name="step")
    def step(x: int) -> int:
        return x + 1

    @task(name="step")
    def step_changed(x: int) -> int:
        return x + 2

    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    for target in (step(1), step(1), step(2), step_changed(1)):
        await engine.run(target)
    same, again, other_input, other_code = (
        _fingerprints(engine, run_id)["step#1"] for run_id in recorded.run_ids()
    )
    assert same is not None
    assert same == again
    assert len({same, other_input, other_code}) == 3
    first = recorded.run_ids()[0]
    (code,) = await engine.plan(step_changed(1), rerun_of=first)
    assert (code.action, code.why) == ("run", "its code changed")
    (changed,) = await engine.plan(step(2), rerun_of=first)
    assert (changed.action, changed.why) == ("run", "its input changed: its arguments")


async def test_a_changed_parameter_re_executes_exactly_the_tasks_it_reaches() -> None:
    """Two branches joined: changing the parameter of one re-executes it and what is below
    it, and reuses the other branch."""
    calls: list[str] = []

    @task
    def source(x: int) -> int:
        calls.append(f"source({x})")
        return x

    @task
    def double(x: int) -> int:
        calls.append("double")
        return x * 2

    @task
    def join(a: int, b: int) -> int:
        calls.append("join")
        return a + b

    def workflow(left: int, right: int) -> Any:
        return join(double(source(left)), double(source(right)))

    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    assert await engine.run(workflow(1, 10)) == 22
    (first,) = recorded.run_ids()
    calls.clear()
    plan = await engine.plan(workflow(1, 20), rerun_of=first)
    steps = sorted((s.task_name, s.action, s.why) for s in plan)
    # the keys are name#n in the graph's order: which source is #1 is the graph's business
    changed = steps[1][2].removeprefix("its input changed: upstream ").removesuffix(" changed")
    assert changed in ("source#1", "source#2")
    assert steps == [
        ("double", "reuse", "unchanged"),
        ("double", "run", f"its input changed: upstream {changed} changed"),
        ("join", "run", f"its input changed: upstream double#{changed[-1]} changed"),
        ("source", "reuse", "unchanged"),
        ("source", "run", "its input changed: its arguments"),
    ]
    assert await engine.run(workflow(1, 20), rerun_of=first) == 42
    assert calls == ["source(20)", "double", "join"]


async def test_a_missing_stored_result_forces_its_task_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """extract's file is gone; transform, which needs it, runs again (it had failed)."""
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target())
    etl.broken = False
    (first,) = recorded.run_ids()
    store = engine.results
    assert store is not None
    fingerprint = store.manifest(first).tasks["extract#1"].fingerprint
    assert fingerprint is not None
    store.fs.rm(store.result_path(fingerprint))
    plan = await engine.plan(etl.target(), rerun_of=first)
    assert [(s.task_name, s.action) for s in plan] == [
        ("extract", "force"),
        ("transform", "run"),
        ("load", "run"),
    ]
    assert plan[0].why == f"its stored result (from run {first[:12]}) is missing"
    await engine.run(etl.target(), rerun_of=first)
    assert etl.calls == {"extract": 2, "transform": 2, "load": 1}
    # kept again by the rerun, which says it ran extract again and why
    assert store.exists(fingerprint)
    second = recorded.run_ids()[1]
    assert recorded.completed(second, "extract").reused_from is None


async def test_an_unreadable_stored_result_forces_its_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target())
    etl.broken = False
    (first,) = recorded.run_ids()
    store = engine.results
    assert store is not None
    fingerprint = store.manifest(first).tasks["extract#1"].fingerprint
    assert fingerprint is not None
    store.fs.pipe_file(store.result_path(fingerprint), b"\xc1")  # never valid msgpack
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        await engine.run(etl.target(), rerun_of=first)
    assert etl.calls["extract"] == 2
    (said,) = [r.getMessage() for r in caplog.records if "runs again" in r.getMessage()]
    assert "extract" in said
    assert "its stored result (from run" in said
    assert "is 1 byte, not the 6 bytes its run kept" in said


@dataclass
class Point:
    x: int


async def test_a_result_that_does_not_decode_back_equal_is_not_kept_and_said_at_the_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tuple comes back a list: not kept, its COMPLETED says why, one warning names the task;
    a result over max_bytes likewise; a list is kept."""

    @task
    def pair() -> tuple[int, int]:
        return (1, 2)

    @task
    def point() -> Point:
        return Point(1)

    @task
    def big() -> bytes:
        return b"x" * 2000

    @task
    def fine() -> list[int]:
        return [1, 2]

    engine = Engine(results=ResultStore(memory_url(), max_bytes=1000))
    recorded = Recorded(engine)
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        await engine.run([pair(), point(), big(), fine()])
    (run_id,) = recorded.run_ids()
    said = [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()]
    assert len(said) == 3
    assert any("pair" in line and "tuple" in line for line in said)
    tuple_reason = recorded.completed(run_id, "pair").not_kept
    assert tuple_reason == "a tuple does not decode back equal from msgpack"
    assert "Point" in (recorded.completed(run_id, "point").not_kept or "")
    assert "over the bound of 1,000" in (recorded.completed(run_id, "big").not_kept or "")
    assert recorded.completed(run_id, "fine").not_kept is None
    stats = engine.stats
    assert (stats.results_kept, stats.results_not_kept) == (1, 3)
    assert stats.results_bytes == len(msgspec.msgpack.encode([1, 2]))
    assert engine.results is not None
    manifest = engine.results.manifest(run_id)
    assert manifest.tasks["pair#1"].from_run is None
    assert manifest.tasks["pair#1"].not_kept == tuple_reason
    # a rerun says it runs pair again because its result was not kept
    plan = await engine.plan([pair(), point(), big(), fine()], rerun_of=run_id)
    assert [s.action for s in plan] == ["run", "run", "run", "reuse"]
    assert plan[0].why == f"its result was not kept: {tuple_reason}"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        await engine.run([pair(), point(), big(), fine()])  # as a served workflow's next run
    assert [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()] == []
    assert stats.results_not_kept_by_task == {"pair": 2, "point": 2, "big": 2}
    assert stats.results_not_kept == 6


class Opaque:
    """An argument with no canonical encoding."""


async def test_an_argument_without_canonical_encoding_makes_its_task_not_reusable() -> None:
    @task
    def takes(thing: Opaque) -> int:
        return 1

    @task
    def after(x: int) -> int:
        return x + 1

    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    await engine.run(after(takes(Opaque())))
    (run_id,) = recorded.run_ids()
    reason = recorded.completed(run_id, "takes").not_kept or ""
    assert reason.startswith("not reusable: argument 1: a ")
    assert "Opaque has no canonical encoding" in reason
    plan = await engine.plan(after(takes(Opaque())), rerun_of=run_id)
    assert [(s.action, s.why) for s in plan] == [
        ("run", reason),
        ("run", "not reusable: upstream takes#1 is not reusable"),
    ]


def _partial_files(root: Path) -> list[Path]:
    return list(root.rglob("*.partial"))


async def test_results_in_a_directory_can_be_read_from_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine(results=True) keeps them in $CASCADE_RESULTS: results/{fp[:2]}/{fp} is the
    value's msgpack, runs/{run_id}.json the manifest, nothing partial left."""
    monkeypatch.setenv("CASCADE_RESULTS", str(tmp_path / "kept"))
    etl = Etl()
    engine = Engine(results=True)
    recorded = Recorded(engine)
    await engine.run(etl.target(3))
    (run_id,) = recorded.run_ids()
    manifest = msgspec.json.decode((tmp_path / "kept" / "runs" / f"{run_id}.json").read_bytes())
    fingerprint = manifest["tasks"]["transform#1"]["fingerprint"]
    kept = tmp_path / "kept" / "results" / fingerprint[:2] / fingerprint
    assert msgspec.msgpack.decode(kept.read_bytes()) == [0, 10, 20]
    assert not _partial_files(tmp_path)
    assert engine.results is not None
    assert engine.results.read(fingerprint) == [0, 10, 20]


async def test_a_run_ends_once_its_manifest_is_written(tmp_path: Path) -> None:
    """Whoever hears a run end may ask for its rerun at once (a served run's end over the broker,
    then a request to another server on the same store): its manifest is there by then."""
    etl = Etl()
    engine = Engine(results=str(tmp_path))
    manifests: list[bool] = []

    def on_event(event: Event) -> None:
        if isinstance(event, RunFinished):
            manifests.append((tmp_path / "runs" / f"{event.run_id}.json").is_file())

    engine.events.subscribe(on_event)
    await engine.run(etl.target(3))
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target(3))
    assert manifests == [True, True]


async def test_a_store_that_hangs_delays_a_runs_end_by_shutdown_timeout_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its writes never return (a hung network file system): the run's end is still emitted
    once shutdown_timeout has passed, so no view shows it running; run() returns once the
    store answers."""
    etl = Etl()
    engine = Engine(results=str(tmp_path), shutdown_timeout=0.2)
    assert engine.results is not None
    release = threading.Event()
    write = engine.results.write

    def hangs(path: str, data: bytes) -> None:
        release.wait(30)
        write(path, data)

    monkeypatch.setattr(engine.results, "write", hangs)
    ended = asyncio.Event()
    engine.events.subscribe(lambda event: ended.set() if isinstance(event, RunFinished) else None)
    running = asyncio.create_task(engine.run(etl.target(3)))
    try:
        await asyncio.wait_for(ended.wait(), 10)
        assert not running.done()  # its results are not written yet
    finally:
        release.set()
    assert await asyncio.wait_for(running, 30) == 30


async def test_a_rerun_needs_the_run_in_the_store_and_one_at_a_time() -> None:
    etl = Etl()
    with pytest.raises(RerunError, match="keeps no results"):
        await Engine().run(etl.target(), rerun_of="abcdef")
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    with pytest.raises(RerunError, match="no run abcdef"):
        await engine.run(etl.target(), rerun_of="abcdef")
    with pytest.raises(RerunError, match="not a run id"):
        await engine.plan(etl.target(), rerun_of="xyz")
    await engine.run(etl.target())
    (first,) = recorded.run_ids()
    with pytest.raises(RerunError, match="no task 'nothing'"):
        await engine.run(etl.target(), rerun_of=first, rerun="from", from_task="nothing")
    with pytest.raises(ValueError, match="from_task goes with"):
        await engine.run(etl.target(), rerun_of=first, from_task="load")
    gate = asyncio.Event()
    running = asyncio.Event()

    @task(name="load")
    async def slow_load(rows: list[int]) -> int:
        running.set()
        await gate.wait()
        return 0

    live = asyncio.create_task(engine.run(slow_load(etl.transform(etl.extract(5))), rerun_of=first))
    await running.wait()
    second = recorded.run_ids()[1]
    with pytest.raises(RerunError, match=f"a rerun of {first} is live: {second}"):
        await engine.run(etl.target(), rerun_of=first)
    gate.set()
    await live
    await engine.run(etl.target(), rerun_of=first)  # once it ended, it may be rerun again


async def test_current_task_gives_each_task_its_idempotency_key_the_same_in_a_rerun() -> None:
    """In a thread task and a coroutine task: the run, the task, the attempt, and
    root_run:key, which a rerun keeps; outside a task, None."""
    assert current_task() is None
    etl = Etl()
    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    etl.broken = True
    with pytest.raises(TaskFailedError):
        await engine.run(etl.target())
    (first,) = recorded.run_ids()
    etl.broken = False
    await engine.run(etl.target(), rerun_of=first)
    second = recorded.run_ids()[1]
    (extract,) = etl.contexts["extract"]
    assert extract is not None
    assert (extract.run_id, extract.task_name, extract.attempt, extract.key) == (
        first,
        "extract",
        1,
        "extract#1",
    )
    assert extract.idempotency_key == f"{first}:extract#1"
    before, after = etl.contexts["transform"]
    assert before is not None
    assert after is not None
    assert (before.run_id, after.run_id) == (first, second)
    assert before.idempotency_key == after.idempotency_key == f"{first}:transform#1"
    assert after.root_run == first
    assert current_task() is None


async def test_without_a_store_tasks_still_know_their_context() -> None:
    seen: list[TaskContext | None] = []

    @task
    def step(i: int) -> int:
        seen.append(current_task())
        return i

    engine = Engine()
    recorded = Recorded(engine)
    await engine.run([step(1), step(2)], name="nightly")
    (run_id,) = recorded.run_ids()
    assert recorded.started(run_id).name == "nightly"
    assert sorted(c.idempotency_key for c in seen if c is not None) == [
        f"{run_id}:step#1",
        f"{run_id}:step#2",
    ]


async def test_a_run_is_named_by_its_target_unless_named() -> None:
    @task
    def first(i: int) -> int:
        return i

    @task
    def second(i: int) -> int:
        return i

    engine = Engine()
    recorded = Recorded(engine)
    await engine.run(first(1))
    await engine.run({"a": second(1), "b": first(2)})
    await engine.run([first(1)], name="named")
    with pytest.raises(ValueError, match="a run's name"):
        await engine.run(first(1), name="x" * 300)
    assert [recorded.started(r).name for r in recorded.run_ids()] == ["first", "second", "named"]


async def test_the_wire_says_the_name_the_origin_what_was_reused_and_what_not_kept() -> None:
    """ENGINE_STARTED has the run's name and origin (rerun_of, root_run); a reused task's
    COMPLETED its reused_from, one whose result was not kept its not_kept; the run's snapshot
    answers have its name and origin, its source's summary its name."""
    broker = InMemoryBroker()
    messages: list[Envelope] = []
    etl = Etl()

    @task(name="extract")
    def extract_pair(n: int) -> tuple[int, ...]:
        return tuple(range(n))

    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(
            telemetry_filter(prefix="cascade"), lambda m: messages.append(decode_envelope(m.raw))
        )
        engine = Engine(
            InMemoryConnector(broker, source_id="e1"),
            heartbeat_interval=None,
            results=memory_url(),
        )
        recorded = Recorded(engine)
        etl.broken = True
        with pytest.raises(TaskFailedError):
            await engine.run(etl.target(), name="nightly")
        (first,) = recorded.run_ids()
        etl.broken = False
        gate, loading = asyncio.Event(), asyncio.Event()

        @task(name="load")
        async def gated_load(rows: list[int]) -> int:
            loading.set()
            await gate.wait()
            return sum(rows)

        run = asyncio.create_task(
            engine.run(gated_load(etl.transform(etl.extract(5))), rerun_of=first, name="nightly")
        )
        await loading.wait()
        second = recorded.run_ids()[1]
        await broker.idle()
        await reader.publish(snapshot_request_topic(second), SnapshotRequest(run_id=second), qos=1)
        await eventually(
            lambda: any(isinstance(m.body, RunSnapshot) and m.run_id == second for m in messages)
        )
        gate.set()
        await run
        await engine.run(extract_pair(2))
        await broker.idle()
        summary = decode_summary(broker.retained(summary_topic("e1")) or b"")  # the final one
    (started,) = [
        m.body
        for m in messages
        if m.run_id == second
        and isinstance(m.body, LifecycleEvent)
        and m.body.event == "ENGINE_STARTED"
    ]
    assert started.name == "nightly"
    assert started.origin == RunOrigin(rerun_of=first, root_run=first)
    (reused,) = [
        m.body
        for m in messages
        if m.run_id == second
        and isinstance(m.body, TaskStateEvent)
        and m.body.task_name == "extract"
    ]
    assert (reused.state, reused.reused_from, reused.duration_ms) == ("COMPLETED", first, 0.0)
    (snapshot,) = [m.body for m in messages if isinstance(m.body, RunSnapshot)]
    assert snapshot.name == "nightly"
    assert (snapshot.completed, snapshot.running, snapshot.pending) == (
        2,
        1,
        0,
    )  # reused: never ran
    assert snapshot.origin == RunOrigin(rerun_of=first, root_run=first)
    assert [r.name for r in summary.listed] == ["extract", "nightly", "nightly"]
    (not_kept,) = [
        m.body
        for m in messages
        if isinstance(m.body, TaskStateEvent)
        and m.body.state == "COMPLETED"
        and m.body.not_kept is not msgspec.UNSET
    ]
    assert not_kept.task_name == "extract"
    assert not_kept.not_kept == "a tuple does not decode back equal from msgpack"


async def test_a_result_given_by_a_decision_is_not_kept() -> None:
    """A held task completed by a decision: its result was given, not computed."""
    held = asyncio.Event()

    @task(on_failure="hold")
    async def flaky() -> int:
        held.set()
        raise ConnectionError("down")

    engine = Engine(results=memory_url())
    recorded = Recorded(engine)
    run = asyncio.create_task(engine.run(flaky()))
    await held.wait()
    (run_id,) = recorded.run_ids()
    await eventually(lambda: len(recorded.of(run_id, "flaky")) >= 2)  # RUNNING, BLOCKED (held)
    reply = engine.decide(run_id, "flaky", "complete", result=7)
    assert reply is not None
    assert reply.applied
    assert await run == 7
    completed = recorded.completed(run_id, "flaky")
    assert completed.not_kept == "completed by a decision: its result was given, not computed"
    assert engine.results is not None
    assert engine.results.manifest(run_id).tasks["flaky#1"].from_run is None


class FailingStore(ResultStore):
    """A store whose result writes fail (a full disk, a denied bucket); manifests are written."""

    def write(self, path: str, data: bytes) -> None:
        if "/results/" in path:
            raise OSError("no space left on device")
        super().write(path, data)


async def test_a_result_whose_write_failed_is_not_kept_and_the_manifest_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    etl = Etl()
    engine = Engine(results=FailingStore(memory_url()))
    recorded = Recorded(engine)
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.engine"):
        assert await engine.run(etl.target()) == 100
    (run_id,) = recorded.run_ids()
    assert engine.results is not None
    extract = engine.results.manifest(run_id).tasks["extract#1"]
    assert extract.from_run is None
    assert extract.not_kept == "it could not be written: OSError: no space left on device"
    stats = engine.stats
    assert (stats.results_kept, stats.results_bytes, stats.results_not_kept) == (0, 0, 3)
    assert any("could not be written" in r.getMessage() for r in caplog.records)
    (step, *_) = await engine.plan(etl.target(), rerun_of=run_id)
    assert (step.action, step.why) == ("run", f"its result was not kept: {extract.not_kept}")
