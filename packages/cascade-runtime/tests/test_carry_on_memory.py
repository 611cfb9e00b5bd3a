"""A carry-on keeps what the lost run knew: the attempts its tasks made (a retry budget is not
spent again), the deadline of each hold (a gate's, a held failure's), and that a slot of a
schedule is carried on (its schedule's overlap counts it). Two servers share a broker and a
results store; one "dies" (its connection dropped as a killed process's is, the broker sending
its will) while its run is in flight, and the other carries the run on from its journal
(tests/faults/test_carry_on.py kills real processes on real brokers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces.serving import (
    StartRequest,
    addressed_start_topic,
    decode_served,
    served_topic,
)
from cascade.runtime import (
    Engine,
    ResultStore,
    RunFinished,
    RunStarted,
    TaskFailed,
    TaskHeld,
    TaskRunning,
)
from cascade.runtime.testing import EventRecorder, eventually

ORG, PROJECT = "local", "default"


class Server:
    """A serving engine on ``broker`` keeping its results in ``results``."""

    def __init__(self, engine: Engine, connector: InMemoryConnector) -> None:
        self.engine = engine
        self.connector = connector
        self.recorder = EventRecorder()
        engine.events.subscribe(self.recorder)

    def finished(self, run_id: str) -> list[RunFinished]:
        return [
            e for e in self.recorder.events if isinstance(e, RunFinished) and e.run_id == run_id
        ]

    def started(self) -> list[RunStarted]:
        return [e for e in self.recorder.events if isinstance(e, RunStarted)]

    def events(self, kind: type[Any], run_id: str, name: str | None = None) -> list[Any]:
        return [
            e
            for e in self.recorder.events
            if isinstance(e, kind) and e.run_id == run_id and name in (None, e.task_name)
        ]


@contextlib.asynccontextmanager
async def _serving(
    broker: InMemoryBroker, results: Path, source: str, workflows: dict[str, Any], **options: Any
) -> AsyncIterator[Server]:
    connector = InMemoryConnector(broker, source_id=source)
    engine = Engine(connector, heartbeat_interval=None, results=str(results))
    server = Server(engine, connector)
    served = asyncio.create_task(engine.serve(workflows, **options))
    try:
        await eventually(lambda: connector.is_connected, timeout=10)
        yield server
    finally:
        served.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await served


async def _start(broker: InMemoryBroker, source: str, workflow: str) -> None:
    async with InMemoryConnector(broker, source_id="operator", presence=False) as operator:
        request = StartRequest(id=f"start-{workflow}", workflow=workflow)
        topic = addressed_start_topic(ORG, PROJECT, workflow, source)
        await operator.publish(topic, request, qos=1)


async def _until_losable(broker: InMemoryBroker, results: Path, source: str, run_id: str) -> None:
    """Wait until ``run_id`` could be lost with ``source``: its journal is written and
    ``source``'s retained announcement lists it live (a run is carried on from what its server
    last announced; the announcement goes out on a later turn than the run's start)."""

    def losable() -> bool:
        retained = broker.retained(served_topic(ORG, PROJECT, source))
        if not retained or run_id not in {r.run_id for r in decode_served(retained).live}:
            return False
        try:
            ResultStore(str(results)).manifest(run_id)
        except cs.RerunError:
            return False
        return True

    await eventually(losable, timeout=10)


def _notes(store: ResultStore, run_id: str) -> dict[str, Any]:
    """What ``run_id``'s journal notes of its tasks, by key, as its carry-on reads it."""
    try:
        return dict(store.manifest(run_id).notes or {})
    except cs.RerunError:
        return {}


@contextlib.asynccontextmanager
async def _carried(
    tmp_path: Path,
    workflows: dict[str, Any],
    noted: Callable[[dict[str, Any]], bool],
    *,
    before_death: Callable[[Path, str], None] | None = None,
) -> AsyncIterator[tuple[Server, str, Server, str]]:
    """Serve ``workflows`` at server-a and server-b; start ``etl`` at server-a, wait until its
    journal's notes satisfy ``noted``, then drop server-a's connection as its death would (its
    run hangs on in this process, unheard); yields both servers, the lost run and its carry-on
    at server-b."""
    broker = InMemoryBroker()
    results = tmp_path / "results"
    store = ResultStore(str(results))
    async with (
        _serving(broker, results, "server-a", workflows) as victim,
        _serving(broker, results, "server-b", workflows) as survivor,
    ):
        await _start(broker, "server-a", "etl")
        await victim.recorder.until(lambda: bool(victim.started()))
        lost = victim.started()[0].run_id
        await eventually(lambda: noted(_notes(store, lost)), timeout=10)
        await _until_losable(broker, results, "server-a", lost)
        if before_death is not None:
            before_death(results, lost)
        await victim.connector.crash()
        await survivor.recorder.until(lambda: bool(survivor.started()), timeout=10)
        yield victim, lost, survivor, survivor.started()[0].run_id


class Flaky:
    """A map of three fetches whose item 1 fails at its first two attempts and hangs at its
    third while ``dying`` (its server about to die), and succeeds once carried on."""

    def __init__(self) -> None:
        self.dying = True
        self.hung = asyncio.Event()

        @cs.task(name="fetch", retry=cs.RetryPolicy(max_attempts=3))
        async def fetch(n: int) -> int:
            context = cs.current_task()
            assert context is not None
            if n == 1 and self.dying:
                if context.attempt < 3:
                    raise ValueError(f"flaky at attempt {context.attempt}")
                self.hung.set()
                await asyncio.Event().wait()  # until its engine "dies"
            return n * 10

        @cs.task(name="total")
        def total(values: list[int]) -> int:
            return sum(values)

        self.fetch, self.total = fetch, total

    def workflow(self) -> Any:
        return self.total(self.fetch.map(n=[0, 1, 2]))


async def test_a_carried_on_item_goes_on_from_the_attempts_its_lost_run_made(
    tmp_path: Path,
) -> None:
    flaky = Flaky()

    def retried_twice(notes: dict[str, Any]) -> bool:
        return getattr(notes.get("fetch#1[1]"), "attempt", 0) == 2 and flaky.hung.is_set()

    async with _carried(tmp_path, {"etl": flaky.workflow}, retried_twice) as found:
        victim, lost, survivor, carried = found
        noted = _notes(ResultStore(str(tmp_path / "results")), lost)["fetch#1[1]"]
        assert (noted.event, noted.error) == ("retrying", "ValueError: flaky at attempt 2")
        flaky.dying = False
        await survivor.recorder.until(lambda: bool(survivor.finished(carried)), timeout=10)
    lost_attempts = [
        e.attempt for e in victim.events(TaskRunning, lost) if e.task_id.endswith("[1]")
    ]
    carried_attempts = [
        e.attempt for e in survivor.events(TaskRunning, carried) if e.task_id.endswith("[1]")
    ]
    assert lost_attempts == [1, 2, 3]
    assert carried_attempts == [3]  # the third again (in flight at the death), not a first
    assert survivor.finished(carried)[0].status == "Succeeded"
    assert survivor.engine.stats.journal_refused == 0


async def test_a_held_gate_keeps_its_deadline_in_the_carry_on(tmp_path: Path) -> None:
    @cs.task(name="ship")
    def ship(approved: bool) -> str:
        return "shipped"

    def workflow() -> Any:
        return ship(cs.gate("ship it?", deadline=3600, default="fail"))

    def gate_held(notes: dict[str, Any]) -> bool:
        return getattr(notes.get("gate#1"), "event", None) == "held"

    async with _carried(tmp_path, {"etl": workflow}, gate_held) as found:
        victim, lost, survivor, carried = found
        await survivor.recorder.until(lambda: bool(survivor.events(TaskHeld, carried)))
    (before,) = victim.events(TaskHeld, lost, "gate")
    (after,) = survivor.events(TaskHeld, carried, "gate")
    assert after.held_by[0].deadline == before.held_by[0].deadline  # not an hour from now


async def test_a_held_failure_is_held_again_until_its_deadline_no_attempt_run(
    tmp_path: Path,
) -> None:
    calls: list[tuple[str, int]] = []

    @cs.task(
        name="charge",
        retry=cs.RetryPolicy(max_attempts=2),
        on_failure="hold",
        hold_timeout=3600,
    )
    def charge() -> int:
        context = cs.current_task()
        assert context is not None
        calls.append((context.run_id, context.attempt))
        raise ValueError("card declined")

    def held(notes: dict[str, Any]) -> bool:
        return getattr(notes.get("charge#1"), "event", None) == "held"

    async with _carried(tmp_path, {"etl": lambda: charge()}, held) as found:
        victim, lost, survivor, carried = found
        await survivor.recorder.until(lambda: bool(survivor.events(TaskHeld, carried)))
    (before,) = victim.events(TaskHeld, lost)
    (after,) = survivor.events(TaskHeld, carried)
    assert after.held_by[0].deadline == before.held_by[0].deadline
    assert (after.attempt, after.held_by[0].attempt) == (2, 2)
    assert after.error == (
        f"FailedInLostRun: attempt 2 failed in run {lost}, whose engine died: "
        "ValueError: card declined"
    )
    assert [run for run, _ in calls] == [lost, lost]  # nothing ran again in the carry-on


async def test_a_note_no_honest_run_writes_is_refused_and_counted(tmp_path: Path) -> None:
    flaky = Flaky()

    def retried_twice(notes: dict[str, Any]) -> bool:
        return getattr(notes.get("fetch#1[1]"), "attempt", 0) == 2 and flaky.hung.is_set()

    def lie(results: Path, lost: str) -> None:
        """Whoever may write the store says the item failed a billion times."""
        for path in (results / "runs" / lost / "kept").iterdir():
            lines = json.loads(path.read_text(encoding="utf-8"))
            for line in lines:
                if line.get("note"):
                    line["note"]["attempt"] = 10**12
            path.write_text(json.dumps(lines), encoding="utf-8")

    async with _carried(tmp_path, {"etl": flaky.workflow}, retried_twice, before_death=lie) as (
        _,
        _,
        survivor,
        carried,
    ):
        flaky.dying = False
        await survivor.recorder.until(lambda: bool(survivor.finished(carried)), timeout=10)
    attempts = [
        e.attempt for e in survivor.events(TaskRunning, carried) if e.task_id.endswith("[1]")
    ]
    assert attempts == [1]  # started afresh
    assert survivor.engine.stats.journal_refused == 1
    assert not survivor.events(TaskFailed, carried)


async def test_a_hold_s_deadline_later_than_a_new_hold_s_is_refused(tmp_path: Path) -> None:
    """A gate's note whose deadline is years ahead (a gate held for good) is not believed: the
    carry-on holds the gate until its own deadline from now, and counts the note refused."""

    @cs.task(name="ship")
    def ship(approved: bool) -> str:
        return "shipped"

    def workflow() -> Any:
        return ship(cs.gate("ship it?", deadline=60, default="fail"))

    def gate_held(notes: dict[str, Any]) -> bool:
        return getattr(notes.get("gate#1"), "event", None) == "held"

    def lie(results: Path, lost: str) -> None:
        for path in (results / "runs" / lost / "kept").iterdir():
            lines = json.loads(path.read_text(encoding="utf-8"))
            for line in lines:
                if line.get("note"):
                    line["note"]["deadline"] = 10.0**12
            path.write_text(json.dumps(lines), encoding="utf-8")

    async with _carried(tmp_path, {"etl": workflow}, gate_held, before_death=lie) as found:
        _, _, survivor, carried = found
        await survivor.recorder.until(lambda: bool(survivor.events(TaskHeld, carried)))
    (held,) = survivor.events(TaskHeld, carried, "gate")
    assert held.held_by[0].deadline < time.time() + 60
    assert survivor.engine.stats.journal_refused == 1


@contextlib.asynccontextmanager
async def _restarted_in_place(
    tmp_path: Path, overlap: str, release: asyncio.Event
) -> AsyncIterator[tuple[Server, ResultStore, str]]:
    """A server of a schedule every second (its ``overlap``), whose slot's run waits for
    ``release``, dies in that run; restarted in place (the same source) once a slot or two
    went by, it carries that run on: yields it restarted, the store and the lost run."""

    @cs.task(name="step")
    async def step() -> int:
        await release.wait()
        return 1

    broker = InMemoryBroker()
    results = tmp_path / "results"
    store = ResultStore(str(results))
    every = timedelta(seconds=1)
    schedules = {"nightly": cs.Schedule(every=every, workflow="etl", overlap=overlap)}  # type: ignore[arg-type]
    workflows = {"etl": lambda: step()}
    async with _serving(broker, results, "server-a", workflows, schedules=schedules) as first:
        await first.recorder.until(lambda: bool(first.started()), timeout=10)
        lost = first.started()[0].run_id
        await eventually(lambda: store.began(lost), timeout=10)
        await first.connector.crash()  # its process dead (its run hangs on here, unheard)
        origin = store.manifest(lost).origin
        assert origin is not None
        assert origin.scheduled_for is not None
        slot = datetime.fromisoformat(origin.scheduled_for)
        # the outage is time passing: a slot or two go by while no server of the schedule runs
        await eventually(lambda: datetime.now(timezone.utc) - slot > timedelta(seconds=2.5))
        async with _serving(broker, results, "server-a", workflows, schedules=schedules) as again:
            yield again, store, lost
            release.set()


def _carries_on(store: ResultStore, run_id: str) -> str | None:
    """The run ``run_id`` carries on, by its journal's head (``None``: none, or not yet)."""
    try:
        origin = store.manifest(run_id).origin
    except cs.RerunError:
        return None
    return origin.carried_on_from if origin is not None else None


async def test_a_restarted_server_skips_a_catch_up_slot_while_it_carries_on_the_last(
    tmp_path: Path,
) -> None:
    """overlap skip: the slot it catches up is skipped, the carried-on slot's run being the
    schedule's live run."""
    async with _restarted_in_place(tmp_path, "skip", asyncio.Event()) as (again, store, lost):
        await eventually(lambda: again.engine.stats.slots_skipped >= 1, timeout=10)
        await again.recorder.until(lambda: bool(again.started()), timeout=10)
        assert again.engine.stats.runs_carried_on == 1
        (carried,) = again.started()  # the carry-on alone: its slot's catch-up skipped
        await eventually(lambda: _carries_on(store, carried.run_id) == lost)


async def test_a_restarted_server_queues_a_catch_up_slot_behind_the_carry_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """overlap queue: the slot it catches up waits for the carry-on, and starts once it ended."""
    caplog.set_level(logging.INFO, logger="cascade.runtime.serve")
    release = asyncio.Event()
    async with _restarted_in_place(tmp_path, "queue", release) as (again, store, lost):
        await eventually(lambda: "(overlap queue)" in caplog.text, timeout=10)
        await again.recorder.until(lambda: bool(again.started()), timeout=10)
        (carried,) = again.started()  # the carry-on alone: the slot waits
        await eventually(lambda: _carries_on(store, carried.run_id) == lost)
        release.set()
        await again.recorder.until(lambda: len(again.started()) == 2, timeout=10)
        assert again.finished(carried.run_id)[0].status == "Succeeded"


async def test_a_restarted_server_s_catch_up_slot_cancels_the_carry_on(tmp_path: Path) -> None:
    """overlap cancel: the slot it catches up cancels the carry-on, as it would any live run of
    its schedule: one still under way (reading the lost run) is abandoned, left lost; one
    started is stopped, by that slot (not a later one, after running beside it)."""
    async with _restarted_in_place(tmp_path, "cancel", asyncio.Event()) as (again, store, _):

        def origin(run: str) -> Any:
            try:
                return store.manifest(run).origin
            except cs.RerunError:
                return None

        def settled() -> bool:
            runs = [e.run_id for e in again.started()]
            if not all(origin(run) is not None for run in runs):
                return False
            carried = [run for run in runs if origin(run).carried_on_from is not None]
            slots = [run for run in runs if run not in carried]
            left = again.engine.stats.runs_left_lost
            return bool(slots) and (left == 1 or bool(carried and again.finished(carried[0])))

        await eventually(settled, timeout=10)
        runs = [e.run_id for e in again.started()]
        carried = [run for run in runs if origin(run).carried_on_from is not None]
        catch_up = min(origin(run).scheduled_for for run in runs if run not in carried)
        for run in carried:  # started before the slot came: stopped by it
            (ended,) = again.finished(run)
            assert ended.status == "Cancelled"
            assert f"slot {catch_up} of nightly (overlap cancel)" in ended.error
        assert len(carried) + again.engine.stats.runs_left_lost == 1


async def test_a_full_server_says_in_words_why_it_carries_no_run_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server with no room for a dead server's run says why in words, never naming a
    private class of its own (the line said ``_Busy: busy: ...``)."""
    release = asyncio.Event()

    @cs.task(name="wait")
    async def wait() -> None:
        await release.wait()

    broker = InMemoryBroker()
    results = tmp_path / "results"
    full = {"max_runs": 1, "max_queued": 0}
    with caplog.at_level(logging.INFO, "cascade.runtime.serve"):
        async with (
            _serving(broker, results, "server-a", {"etl": wait}) as victim,
            _serving(broker, results, "server-b", {"etl": wait}, **full) as survivor,
        ):
            async with InMemoryConnector(broker, source_id="ops", presence=False) as operator:
                for number, source in enumerate(("server-b", "server-a")):
                    request = StartRequest(id=f"start-{number}", workflow="etl")
                    topic = addressed_start_topic(ORG, PROJECT, "etl", source)
                    await operator.publish(topic, request, qos=1)
            await survivor.recorder.until(lambda: bool(survivor.started()))
            await victim.recorder.until(lambda: bool(victim.started()))
            lost = victim.started()[0].run_id
            await _until_losable(broker, results, "server-a", lost)
            await victim.connector.crash()
            await eventually(lambda: f"run {lost} is not carried on here" in caplog.text, 10)
            release.set()
    (said,) = [r.getMessage() for r in caplog.records if "not carried on here" in r.getMessage()]
    assert said == (
        f"run {lost} is not carried on here: busy: 1 runs running and 0 queued "
        "(max_runs 1, max_queued 0)"
    )
