"""Scenario: a served run outlives its engine. Two servers of one workflow share a results store;
a run of 30 tasks starts at one of them, which is killed (SIGKILL, as an OOM kill or a lost
machine) once 10 are done; the other carries the run on from what it kept. Each scenario runs
with the shared store in a directory and in an S3 bucket (moto's server: ``shared_store``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.interfaces import Message
from cascade.interfaces.serving import StartRequest, addressed_start_topic, served_topic
from cascade.runtime import RerunError, ResultStore, RunManifest
from cascade.runtime.testing import eventually
from cascade.testkit import Inbox, OwnBroker, SharedStore, free_port

from .conftest import EngineProcess, Figures, TcpProxy

SERVER_PROCESS = Path(__file__).with_name("server_process.py")
KEEPALIVE = 2
TASKS = 30
ORG, PROJECT = "local", "default"


class _Via:
    """A broker reached through a proxy of the test's."""

    def __init__(self, port: int) -> None:
        self.port = port


async def _server(
    broker: OwnBroker | _Via,
    prefix: str,
    source: str,
    results: SharedStore,
    *options: str,
    log: Path | None = None,
) -> EngineProcess:
    """``server_process.py`` serving as ``source``; its log lines to ``log`` where given."""
    args = ["--port", str(broker.port), "--prefix", prefix, "--source", source]
    args += ["--results", results.url, "--tasks", str(TASKS), "--keepalive", str(KEEPALIVE)]
    with log.open("wb") if log is not None else contextlib.nullcontext() as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVER_PROCESS),
            *args,
            *options,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **results.environment},
        )
    return EngineProcess(process)


async def _serving(observer: MqttConnector, prefix: str, source: str) -> None:
    """Until ``source`` announces what it serves (an exact subscription: every broker family
    sends it retained)."""
    inbox = Inbox()
    handle = await observer.subscribe(served_topic(ORG, PROJECT, source, prefix), inbox)
    try:
        await inbox.until(lambda m: bool(m.raw), timeout=30)
    finally:
        await handle.unsubscribe()


@contextlib.asynccontextmanager
async def _two_servers(
    broker: OwnBroker,
    prefix: str,
    results: SharedStore,
    processes: list[EngineProcess],
    *options: str,
    via: _Via | None = None,
) -> AsyncIterator[tuple[EngineProcess, EngineProcess, MqttConnector]]:
    """``server-a`` (the one a scenario kills or cuts off; on ``broker``, or ``via`` a proxy
    to it) and ``server-b``, serving with ``options`` and sharing ``results``, and an observer
    connected once both serve."""
    victim = await _server(via or broker, prefix, "server-a", results, *options)
    survivor = await _server(broker, prefix, "server-b", results, *options)
    processes += [victim, survivor]
    observer = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    try:
        await _serving(observer, prefix, "server-a")
        await _serving(observer, prefix, "server-b")
        yield victim, survivor, observer
    finally:
        await observer.disconnect()


def _opened(shared: SharedStore) -> ResultStore:
    """The shared store, as the test reads it."""
    return ResultStore(shared.url, storage_options=shared.storage_options)


def _manifest(store: ResultStore, run_id: str) -> RunManifest | None:
    try:
        return store.manifest(run_id)
    except RerunError:
        return None


async def _start(observer: MqttConnector, prefix: str, server: str, request: StartRequest) -> None:
    """Ask ``server`` to start ``request``'s run."""
    await observer.publish(
        addressed_start_topic(ORG, PROJECT, "etl", server, prefix), request, qos=1
    )


async def _step(child: EngineProcess, event: str, i: int, timeout: float = 60) -> dict[str, Any]:
    """``child``'s line saying step ``i`` is ``event`` (``running``, ``done``)."""
    line = await child.expect(event, timeout=timeout)
    while line["i"] != i:
        line = await child.expect(event, timeout=timeout)
    return line


async def _kept(store: ResultStore, run_id: str, tasks: int, timeout: float = 10) -> None:
    """Until ``run_id``'s journal lists ``tasks`` kept (it lags a task a batch, 50 ms at most)."""
    await eventually(
        lambda: len(getattr(_manifest(store, run_id), "tasks", {})) == tasks, timeout=timeout
    )


async def _status(store: ResultStore, run_id: str, status: str) -> None:
    """Until ``run_id``'s manifest says ``status``."""
    await eventually(
        lambda: getattr(_manifest(store, run_id), "status", None) == status, timeout=60
    )


async def test_a_killed_server_s_run_is_carried_on_by_the_other(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    figures.scenario = "served run's engine SIGKILL, carried on"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(own_broker, prefix, results, engine_processes, "--stall-at", "11")
    async with servers as (victim, survivor, observer):
        request = StartRequest(id="nightly-1", workflow="etl", issued_by="ops", reason="nightly")
        await _start(observer, prefix, "server-a", request)
        eleventh = await _step(victim, "running", 11)
        lost = eleventh["run"]
        # ten done, and kept: the journal lists them (it lags the task a batch, 50 ms at most)
        await _kept(store, lost, 10)
        loop = asyncio.get_running_loop()
        os.kill(victim.process.pid, signal.SIGKILL)
        killed = loop.time()
        first = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
        carried_after = loop.time() - killed
        carried = first["run"]
        await _step(survivor, "done", TASKS)
        await _status(store, carried, "Succeeded")
        ended = await survivor.expect("finished")
    ran_again = sorted(
        line["i"] for line in survivor.lines if line.get("event") == "running" and line["i"] <= 10
    )
    figures.seconds, figures.what = carried_after, "kill → carried on"
    figures.notes.append(f"finished tasks run twice: {len(ran_again)}; in flight run again: 1")
    assert carried_after < 2 * KEEPALIVE + 2
    assert first["i"] == 11  # the one in flight runs again; the ten finished do not
    assert ran_again == []
    final = store.manifest(carried)
    assert final.rerun_of == lost
    assert sum(1 for t in final.tasks.values() if t.from_run == lost) == 10
    started = [line["i"] for line in survivor.lines if line.get("event") == "running"]
    assert started == list(range(11, TASKS + 1))
    assert (ended["run"], ended["carried_on"], ended["left_lost"]) == (carried, 1, 0)
    figures.outcome = "ok"


async def test_a_scheduled_run_whose_server_died_is_carried_on_and_its_slot_not_fired_again(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """Two servers of a schedule every 10 s: the one that claimed a slot is killed mid-run;
    the other carries that run on (its slot in its origin), and neither fires the slot again."""
    figures.scenario = "scheduled run's engine SIGKILL, carried on"
    results, store = shared_store, _opened(shared_store)
    servers = {
        source: await _server(
            own_broker, prefix, source, results, "--every", "10", "--stall-at", "11"
        )
        for source in ("server-a", "server-b")
    }
    engine_processes += servers.values()
    steps = {
        source: asyncio.ensure_future(_step(child, "running", 11, timeout=40))
        for source, child in servers.items()
    }
    done, pending = await asyncio.wait(steps.values(), return_when=asyncio.FIRST_COMPLETED)
    for waiting in pending:
        waiting.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    (fired,) = [source for source, step in steps.items() if step in done]
    victim = servers[fired]
    (survivor,) = [child for source, child in servers.items() if source != fired]
    lost = steps[fired].result()["run"]
    await _kept(store, lost, 10)
    began = store.manifest(lost).origin
    assert began is not None
    assert began.schedule == "nightly"  # a schedule's run, its slot named
    slot = began.scheduled_for
    assert slot is not None
    os.kill(victim.process.pid, signal.SIGKILL)
    first = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
    while first["i"] != 11:  # a later slot's run may start there too: the carried-on run's
        first = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
    carried = first["run"]
    await _status(store, carried, "Succeeded")
    final = store.manifest(carried)
    assert final.rerun_of == lost
    assert final.origin is not None
    assert (final.origin.schedule, final.origin.scheduled_for) == ("nightly", slot)
    runs = {line["run"] for line in survivor.lines if line.get("event") == "running"}
    slots = [
        getattr(getattr(_manifest(store, run), "origin", None), "scheduled_for", None)
        for run in runs
    ]
    assert slots.count(slot) == 1  # the carried-on run alone: the slot not fired again
    figures.outcome = "ok"


async def test_a_carry_on_claimed_by_a_server_that_died_before_its_run_began_is_taken_over(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """The claim of a carry-on whose claimant died before its run began (its run never began,
    its claim a minute old) holds nothing: the next server takes the carry-on over."""
    figures.scenario = "carry-on's claimant died before its run began, taken over"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(own_broker, prefix, results, engine_processes, "--stall-at", "6")
    async with servers as (victim, survivor, observer):
        await _start(observer, prefix, "server-a", StartRequest(id="nightly-5", workflow="etl"))
        lost = (await _step(victim, "running", 6))["run"]
        await _kept(store, lost, 5)
        # a third server claimed the carry-on ten minutes ago (the store's claim file, as
        # docs/durability.md lays it out), then died before its run began
        taken = {"run_id": "0" * 32, "source": "server-z", "at": time.time() - 600}
        claim = f"{store.root}/claims/starts/carry-{lost}.json"
        store.write(claim, json.dumps(taken).encode())
        os.kill(victim.process.pid, signal.SIGKILL)
        first = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
        carried = first["run"]
        await _status(store, carried, "Succeeded")
    assert first["i"] == 6
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"


async def test_a_server_restarted_in_place_carries_on_the_run_that_died_with_it(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    figures.scenario = "served run's engine SIGKILL, restarted in place"
    results, store = shared_store, _opened(shared_store)
    first = await _server(own_broker, prefix, "server-a", results, "--stall-at", "6")
    engine_processes.append(first)
    observer = MqttConnector(own_broker.host, own_broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    try:
        await _serving(observer, prefix, "server-a")
        request = StartRequest(id="nightly-2", workflow="etl")
        await _start(observer, prefix, "server-a", request)
        running = await _step(first, "running", 6)
        lost = running["run"]
        await _kept(store, lost, 5)
        os.kill(first.process.pid, signal.SIGKILL)
        await first.process.wait()
        again = await _server(own_broker, prefix, "server-a", results)
        engine_processes.append(again)
        resumed = await again.expect("running", timeout=30)
        carried = resumed["run"]
        await _status(store, carried, "Succeeded")
    finally:
        await observer.disconnect()
    assert resumed["i"] == 6
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"


async def test_a_server_cut_off_that_comes_back_stops_the_run_carried_on_elsewhere(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """A partition is not a death: the broker takes the server cut off for dead and its run is
    carried on elsewhere; back on the broker, it finds that and stops its own copy, so the run
    does not finish twice."""
    figures.scenario = "served run's engine cut off, carried on, fenced"
    results, store = shared_store, _opened(shared_store)
    proxy = TcpProxy(own_broker.port, free_port())
    await proxy.start()
    slow = ("--sleep", "0.5")  # its run outlasts the partition
    via = _Via(proxy.port)
    try:
        async with _two_servers(own_broker, prefix, results, engine_processes, *slow, via=via) as (
            victim,
            survivor,
            observer,
        ):
            request = StartRequest(id="nightly-3", workflow="etl")
            await _start(observer, prefix, "server-a", request)
            running = await _step(victim, "running", 4)
            lost = running["run"]
            await _kept(store, lost, 3)
            await proxy.cut()  # the broker sees its connection close: its will goes out
            carried_on = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
            carried = carried_on["run"]
            await proxy.restore()
            await _status(store, lost, "Cancelled")
            ran_on = max(line["i"] for line in victim.lines if line.get("event") == "running")
            await _status(store, carried, "Succeeded")
    finally:
        await proxy.close()
    figures.notes.append(f"the cut-off server ran to task {ran_on} of {TASKS} before it stopped")
    assert ran_on < TASKS  # stopped before it finished: the run finished once, carried on
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"


async def test_a_run_that_kills_its_engine_each_time_is_left_lost_after_its_budget(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
    tmp_path: Path,
) -> None:
    """A crash loop: the fifth step kills whichever engine runs it. Carried on once
    (``max_carry_ons=1``), then the last server leaves it lost and says why."""
    figures.scenario = "served run kills its engine each time: budget"
    results, store = shared_store, _opened(shared_store)
    options = ("--die-at", "5", "--max-carry-ons", "1", "--sleep", "0.05")
    logs = {name: tmp_path / f"{name}.log" for name in ("server-a", "server-b", "server-c")}
    servers = {
        name: await _server(own_broker, prefix, name, results, *options, log=log)
        for name, log in logs.items()
    }
    engine_processes += servers.values()
    observer = MqttConnector(own_broker.host, own_broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    try:
        for name in servers:
            await _serving(observer, prefix, name)
        request = StartRequest(id="nightly-4", workflow="etl")
        await _start(observer, prefix, "server-a", request)
        await servers["server-a"].process.wait()  # its fifth step killed it
        # one of the others carries it on, and dies at its fifth step too
        dead = await _first_to_end(servers["server-b"], servers["server-c"])
        alive = "server-c" if dead == "server-b" else "server-b"
        said = "carried on 1 times already (max_carry_ons)"
        await eventually(lambda: said in logs[alive].read_text(encoding="utf-8"), timeout=20)
    finally:
        await observer.disconnect()
    listed = store.fs.ls(f"{store.root}/runs", detail=False)
    runs = {str(path).rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") for path in listed}
    manifests = [store.manifest(run) for run in runs]
    assert sorted(m.status for m in manifests) == ["Unfinished", "Unfinished"]
    carried = [m for m in manifests if m.origin is not None and m.origin.carry_ons == 1]
    assert len(carried) == 1
    assert servers[alive].process.returncode is None  # it did not run the line a third time
    figures.notes.append(f"left lost by {alive}: {said}")
    figures.outcome = "ok"


async def _first_to_end(*children: EngineProcess) -> str:
    waits = {asyncio.ensure_future(child.process.wait()): child for child in children}
    done, pending = await asyncio.wait(waits, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    assert done, "no carry-on killed its engine"
    (ended,) = done
    return "server-b" if waits[ended] is children[0] else "server-c"


async def test_a_held_carry_on_waits_for_a_person_then_carries_on(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """``on_engine_lost="hold"``: the carry-on starts held (its task ``carry_on``, a gate, in
    the held list); nothing of it runs until a person completes the gate."""
    figures.scenario = "served run's engine SIGKILL, carry-on held"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(
        own_broker, prefix, results, engine_processes, "--policy", "hold", "--stall-at", "4"
    )
    async with servers as (victim, survivor, observer):
        request = StartRequest(id="nightly-5", workflow="etl")
        await _start(observer, prefix, "server-a", request)
        running = await _step(victim, "running", 4)
        lost = running["run"]
        await _kept(store, lost, 3)
        held = Inbox()
        await observer.subscribe(f"{prefix}/telemetry/{ORG}/{PROJECT}/+/events", held)
        os.kill(victim.process.pid, signal.SIGKILL)
        blocked = await held.until(
            lambda m: (
                m.payload.get("body", {}).get("task_name") == "carry_on"
                and m.payload["body"].get("state") == "BLOCKED"
            ),
            timeout=2 * KEEPALIVE + 10,
        )
        carried = blocked.payload["run_id"]
        steering = Controller(observer, issued_by="ops")
        decided_at = time.time()
        answer = await steering.run(carried, org=ORG, project=PROJECT).complete(
            "carry_on", True, reason="the load is idempotent"
        )
        assert answer.applied, answer.describe()
        first = await survivor.expect("running", timeout=30)
        await _step(survivor, "done", TASKS)
        await _status(store, carried, "Succeeded")
    assert first["i"] == 4  # the one in flight; the three finished reused
    assert first["at"] >= decided_at  # nothing ran before the decision
    final = store.manifest(carried)
    assert final.rerun_of == lost
    figures.outcome = "ok"


async def test_a_task_unsafe_to_repeat_in_flight_waits_for_a_person(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """``@task(repeatable=False)`` in flight when its engine died: the carry-on reuses what was
    done and holds that task behind a gate ``may_repeat`` until a person decides."""
    figures.scenario = "served run's engine SIGKILL, unsafe task held"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(
        own_broker, prefix, results, engine_processes, "--unsafe-at", "4", "--stall-at", "4"
    )
    async with servers as (victim, survivor, observer):
        await _start(observer, prefix, "server-a", StartRequest(id="nightly-6", workflow="etl"))
        lost = (await _step(victim, "running", 4))["run"]
        await _kept(store, lost, 3)
        held = Inbox()
        await observer.subscribe(f"{prefix}/telemetry/{ORG}/{PROJECT}/+/events", held)
        os.kill(victim.process.pid, signal.SIGKILL)
        blocked = await held.until(
            lambda m: (
                m.payload.get("body", {}).get("task_name") == "may_repeat"
                and m.payload["body"].get("state") == "BLOCKED"
            ),
            timeout=2 * KEEPALIVE + 10,
        )
        carried = blocked.payload["run_id"]
        decided_at = time.time()
        answer = (
            await Controller(observer, issued_by="ops")
            .run(carried, org=ORG, project=PROJECT)
            .complete("may_repeat", True, reason="the payment did not go out")
        )
        assert answer.applied, answer.describe()
        first = await survivor.expect("running", timeout=30)
        await _step(survivor, "done", TASKS)
        await _status(store, carried, "Succeeded")
    assert first["i"] == 4
    assert first["at"] >= decided_at  # not run again before a person said so
    figures.outcome = "ok"


async def _noted(store: ResultStore, run_id: str, key: str, event: str, attempt: int) -> None:
    """Until ``run_id``'s journal notes ``event`` of ``key``'s ``attempt`` (a batch, 50 ms)."""

    def noted() -> bool:
        note = (getattr(_manifest(store, run_id), "notes", None) or {}).get(key)
        return note is not None and (note.event, note.attempt) == (event, attempt)

    await eventually(noted, timeout=10)


async def test_a_carried_on_task_goes_on_from_the_attempts_its_lost_run_made(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """Step 4, tried up to 3 times, failed twice and was at its third attempt when its engine
    was killed: the carry-on runs its third attempt again, not a first (its budget is not
    spent again)."""
    figures.scenario = "served run's engine SIGKILL mid-retries, carried on"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(own_broker, prefix, results, engine_processes, "--flaky-at", "4")
    async with servers as (victim, survivor, observer):
        await _start(observer, prefix, "server-a", StartRequest(id="nightly-7", workflow="etl"))
        third = await _step(victim, "running", 4)
        while third["attempt"] != 3:
            third = await _step(victim, "running", 4)
        lost = third["run"]
        await _noted(store, lost, "step#4", "retrying", 2)
        os.kill(victim.process.pid, signal.SIGKILL)
        first = await survivor.expect("running", timeout=2 * KEEPALIVE + 10)
        carried = first["run"]
        await _status(store, carried, "Succeeded")
    attempts = [line["attempt"] for line in survivor.lines if line.get("i") == 4]
    figures.notes.append(f"step 4's attempts in the carry-on: {attempts}")
    assert (first["i"], first["attempt"]) == (4, 3)
    assert attempts == [3]
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"


async def test_a_held_task_is_held_again_by_the_carry_on_until_the_same_deadline(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """Step 4 failed its two attempts and was held for a decision (an hour) when its engine was
    killed: the carry-on holds it again at once, its attempt and deadline on the wire the lost
    run's, running nothing of it; a decision on it carries the run on."""
    figures.scenario = "served run's engine SIGKILL while a task is held, carried on"
    results, store = shared_store, _opened(shared_store)
    servers = _two_servers(own_broker, prefix, results, engine_processes, "--hold-at", "4")
    async with servers as (victim, survivor, observer):
        events = Inbox()
        await observer.subscribe(f"{prefix}/telemetry/{ORG}/{PROJECT}/+/events", events)

        def held(run: str | None) -> Callable[[Message], bool]:
            def matches(m: Message) -> bool:
                body = m.payload.get("body", {})
                return (
                    body.get("task_name") == "step"
                    and body.get("state") == "BLOCKED"
                    and any(h.get("type") == "decision" for h in body.get("held_by") or [])
                    and (run is None or m.payload.get("run_id") != run)
                )

            return matches

        await _start(observer, prefix, "server-a", StartRequest(id="nightly-8", workflow="etl"))
        before = await events.until(held(None), timeout=30)
        lost = before.payload["run_id"]
        await _noted(store, lost, "step#4", "held", 2)
        os.kill(victim.process.pid, signal.SIGKILL)
        after = await events.until(held(lost), timeout=2 * KEEPALIVE + 10)
        carried = after.payload["run_id"]
        answer = (
            await Controller(observer, issued_by="ops")
            .run(carried, org=ORG, project=PROJECT)
            .complete("step", 10, reason="charged by hand")
        )
        assert answer.applied, answer.describe()
        await _status(store, carried, "Succeeded")
    (hold_before,) = before.payload["body"]["held_by"]
    (hold_after,) = after.payload["body"]["held_by"]
    assert (hold_after["attempt"], hold_after["deadline"]) == (2, hold_before["deadline"])
    assert answer.reply is not None
    assert answer.reply.attempt == 2  # the decision named the lost run's attempt
    assert [line for line in survivor.lines if line.get("i") == 4] == []  # not run again
    figures.outcome = "ok"


async def test_a_server_restarted_in_place_skips_the_slot_it_catches_up_while_it_carries_on(
    own_broker: OwnBroker,
    prefix: str,
    engine_processes: list[EngineProcess],
    figures: Figures,
    shared_store: SharedStore,
) -> None:
    """A schedule every 2 s (overlap skip): its server is killed in a slot's run and restarted
    in place once a slot went by; it carries that run on and skips the slot it catches up (and
    those that come while the carry-on runs): no run starts beside the carried-on one, even
    where reading the lost run from the store (a second a read) takes longer than the slot's
    claim on the broker."""
    figures.scenario = "scheduled run's engine SIGKILL, restarted in place, catch-up skipped"
    results, store = shared_store, _opened(shared_store)
    first = await _server(own_broker, prefix, "server-a", results, "--every", "2")
    engine_processes.append(first)
    lost = (await _step(first, "running", 6, timeout=40))["run"]
    await _kept(store, lost, 5)
    os.kill(first.process.pid, signal.SIGKILL)
    await first.process.wait()
    origin = store.manifest(lost).origin
    assert origin is not None
    assert origin.scheduled_for is not None
    slot = datetime.fromisoformat(origin.scheduled_for)
    # the outage is time passing: a slot or two go by while no server of the schedule runs
    await eventually(lambda: datetime.now(timezone.utc) - slot > timedelta(seconds=4.5))
    slow = ("--slow-store", "1")
    again = await _server(own_broker, prefix, "server-a", results, "--every", "2", *slow)
    engine_processes.append(again)
    resumed = await again.expect("running", timeout=30)
    carried = resumed["run"]
    ended = await again.expect("finished", timeout=60)
    started = {line["run"] for line in again.lines if line.get("event") == "running"}
    figures.notes.append(f"slots skipped while carrying on: {ended['skipped']}")
    assert ended["run"] == carried
    assert started == {carried}  # nothing started beside the carry-on
    assert ended["skipped"] >= 1
    assert store.manifest(carried).rerun_of == lost
    figures.outcome = "ok"
