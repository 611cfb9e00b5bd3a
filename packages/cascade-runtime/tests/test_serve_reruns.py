"""Reruns through a serving engine: a failed served run rerun by a request (its params from the
results store), a dry run's plan, and a rerun of a run refused while another rerun of it is
live, here or at another server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message, rollcall_topic
from cascade.interfaces.serving import (
    ServedAnnouncement,
    ServedWorkflow,
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_served,
    decode_start_reply,
    served_topic,
)
from cascade.runtime import Engine, Router, RunFinished, RunStarted, TaskSkipped, task
from cascade.runtime.testing import EventRecorder, eventually, serving

SOURCE = "server-1"


class Pipeline:
    """extract -> transform -> load; transform fails while ``broken``, and waits for
    ``gate`` when one is set."""

    def __init__(self) -> None:
        self.calls = {"extract": 0, "transform": 0, "load": 0}
        self.broken = True
        self.gate: asyncio.Event | None = None

        @task(name="extract")
        def extract(n: int) -> list[int]:
            self.calls["extract"] += 1
            return list(range(n))

        @task(name="transform")
        async def transform(rows: list[int]) -> list[int]:
            self.calls["transform"] += 1
            if self.broken:
                raise ValueError("bad rows")
            if self.gate is not None:
                await self.gate.wait()
            return [r * 2 for r in rows]

        @task(name="load")
        def load(rows: list[int]) -> int:
            self.calls["load"] += 1
            return sum(rows)

        self.extract, self.transform, self.load = extract, transform, load

    def workflow(self, n: int = 5) -> Any:
        return self.load(self.transform(self.extract(n)))


class Requester:
    def __init__(self, connector: InMemoryConnector) -> None:
        self.connector = connector
        self.replies: list[StartReply] = []
        self.announced: ServedAnnouncement | None = None
        self.announcements = 0  # SOURCE's, each time published
        self._changed = asyncio.Event()

    def on_reply(self, message: Message) -> None:
        self.replies.append(decode_start_reply(message.raw))
        self._changed.set()

    def on_served(self, message: Message) -> None:
        self.announced = decode_served(message.raw) if message.raw else None
        self.announcements += 1
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 10)

    async def idle(self) -> None:
        """Until the server announces no run running nor queued (its runs have ended)."""
        await self.until(
            lambda: (a := self.announced) is not None and (a.running, a.queued) == (0, 0)
        )

    async def ask(self, request: StartRequest, to: str = SOURCE) -> StartReply:
        await self.connector.publish(
            addressed_start_topic("local", "default", request.workflow, to), request, qos=1
        )

        async def wait() -> StartReply:
            while not (found := [r for r in self.replies if r.id == request.id]):
                self._changed.clear()
                await self._changed.wait()
            return found[0]

        return await asyncio.wait_for(wait(), 10)


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker()


@pytest.fixture
async def requester(broker: InMemoryBroker) -> AsyncIterator[Requester]:
    async with _requester(broker) as asker:
        yield asker


@contextlib.asynccontextmanager
async def _requester(broker: InMemoryBroker) -> AsyncIterator[Requester]:
    async with InMemoryConnector(broker, source_id="operator", presence=False) as connector:
        asker = Requester(connector)
        await connector.subscribe("cascade/reply/#", asker.on_reply)
        await connector.subscribe(served_topic("local", "default", SOURCE), asker.on_served)
        yield asker


@contextlib.asynccontextmanager
async def this_server(
    broker: InMemoryBroker,
    results: Path,
    workflows: dict[str, Callable[..., Any]],
    requester: Requester,
) -> AsyncIterator[tuple[Engine, EventRecorder]]:
    """``server-1``, serving ``workflows`` with its results in ``results``, its events
    recorded; once ``requester`` heard it announce itself idle."""
    connector = InMemoryConnector(broker, source_id=SOURCE)
    engine = Engine(connector, heartbeat_interval=None, results=results)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with serving(engine, workflows):
        await requester.idle()
        yield engine, recorder


def _ends(recorder: EventRecorder) -> dict[str, str]:
    return {e.run_id: e.status for e in recorder.events if isinstance(e, RunFinished)}


def _started(recorder: EventRecorder, run_id: str | None) -> RunStarted:
    (started,) = [e for e in recorder.events if isinstance(e, RunStarted) and e.run_id == run_id]
    return started


async def test_a_failed_served_run_is_rerun_from_its_stored_results(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """The first run fails at transform; a dry run (by a 12-digit prefix) plans to reuse
    extract and run the rest; the rerun, with the params the first ran with, reuses
    extract (its function ran once in all) and succeeds; its origin names the run it reruns
    and the root; a changed param re-executes the tasks it reaches."""
    pipeline = Pipeline()
    async with this_server(broker, tmp_path, {"etl": pipeline.workflow}, requester) as (
        engine,
        recorder,
    ):
        first = await requester.ask(StartRequest(id="s1", workflow="etl", params={"n": 4}))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        assert first.run_id is not None
        assert _ends(recorder)[first.run_id] == "Failed"
        pipeline.broken = False
        prefix = first.run_id[:12]
        planned = await requester.ask(
            StartRequest(id="d1", workflow="etl", rerun_of=prefix, dry_run=True)
        )
        assert (planned.outcome, planned.rerun_of, planned.run_id) == (
            "planned",
            first.run_id,
            None,
        )
        assert [(p.task_name, p.action) for p in planned.plan] == [
            ("extract", "reuse"),
            ("transform", "run"),
            ("load", "run"),
        ]
        assert planned.plan[0].from_run == first.run_id
        assert planned.plan_count == 3
        assert pipeline.calls == {"extract": 1, "transform": 1, "load": 0}  # nothing ran
        nowhere = await requester.ask(
            StartRequest(
                id="d2", workflow="etl", rerun_of=prefix, rerun="from", from_task="nope",
                dry_run=True,
            )
        )  # fmt: skip
        assert (nowhere.outcome, nowhere.error) == (
            "refused",
            "no task 'nope' in the workflow (a task's id, name or key)",
        )
        forced = await requester.ask(
            StartRequest(
                id="d3", workflow="etl", rerun_of=prefix, rerun="from", from_task="extract",
                dry_run=True,
            )
        )  # fmt: skip
        assert [p.action for p in forced.plan] == ["force", "run", "run"]
        again = await requester.ask(StartRequest(id="r1", workflow="etl", rerun_of=prefix))
        await recorder.until(lambda: again.run_id in _ends(recorder))
        await requester.idle()
        assert (again.outcome, again.rerun_of, again.name) == ("started", first.run_id, "etl")
        assert [p.action for p in again.plan] == ["reuse", "run", "run"]
        assert again.run_id is not None
        assert _ends(recorder)[again.run_id] == "Succeeded"
        assert pipeline.calls == {"extract": 1, "transform": 2, "load": 1}
        origin = _started(recorder, again.run_id).origin
        assert origin is not None
        assert (origin.workflow, origin.params, origin.request_id) == ("etl", {"n": 4}, "r1")
        assert (origin.rerun_of, origin.root_run) == (first.run_id, first.run_id)
        changed = await requester.ask(
            StartRequest(id="r2", workflow="etl", rerun_of=prefix, params={"n": 6})
        )
        await recorder.until(lambda: changed.run_id in _ends(recorder))
        assert [p.action for p in changed.plan] == ["run", "run", "run"]
        assert pipeline.calls == {"extract": 2, "transform": 3, "load": 2}
        assert (engine.stats.starts_taken, engine.stats.starts_refused) == (5, 1)


async def test_a_rerun_is_refused_while_another_rerun_of_the_run_is_live(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """Here (a rerun running) or at another server (its announcement's live): refused, with
    who reruns it; an unknown run and a run of another workflow: refused, with why."""
    pipeline = Pipeline()
    workflows: dict[str, Callable[..., Any]] = {
        "etl": pipeline.workflow,
        "other": pipeline.workflow,
    }
    async with this_server(broker, tmp_path, workflows, requester) as (_, recorder):
        first = await requester.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        assert first.run_id is not None
        pipeline.broken, pipeline.gate = False, asyncio.Event()
        live = await requester.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        assert live.started
        second = await requester.ask(StartRequest(id="r2", workflow="etl", rerun_of=first.run_id))
        assert second.outcome == "refused"
        assert second.error == f"a rerun of {first.run_id} is live: {live.run_id} on {SOURCE}"
        pipeline.gate.set()
        await recorder.until(lambda: live.run_id in _ends(recorder))
        await requester.idle()

        other = msgspec.convert(
            {
                "source": "server-2",
                "org_id": "local",
                "project_id": "default",
                "workflows": [ServedWorkflow(name="etl")],
                "capacity": 1,
                "running": 1,
                "live": [{"run_id": "f" * 32, "workflow": "etl", "rerun_of": first.run_id}],
            },
            ServedAnnouncement,
        )
        await requester.connector.publish(
            served_topic("local", "default", "server-2"), other, qos=1, retain=True
        )
        await broker.idle()
        elsewhere = await requester.ask(
            StartRequest(id="r3", workflow="etl", rerun_of=first.run_id)
        )
        assert elsewhere.error == f"a rerun of {first.run_id} is live: on server-2"
        await requester.connector.publish(
            served_topic("local", "default", "server-2"), b"", qos=1, retain=True
        )
        await broker.idle()
        wrong = await requester.ask(StartRequest(id="r4", workflow="other", rerun_of=first.run_id))
        assert wrong.error == f"run {first.run_id} ran workflow 'etl', not 'other'"
        unknown = await requester.ask(StartRequest(id="r5", workflow="etl", rerun_of="abcdef123"))
        assert unknown.outcome == "refused"
        assert unknown.error.startswith("no run abcdef123 in the results store")
        after = await requester.ask(StartRequest(id="r6", workflow="etl", rerun_of=first.run_id))
        assert after.started  # the other server's rerun ended (its announcement cleared)
        await recorder.until(lambda: after.run_id in _ends(recorder))


async def test_a_server_started_later_learns_the_reruns_live_elsewhere_from_a_roll_call(
    tmp_path: Path,
) -> None:
    """On a broker that sends retained messages to exact subscriptions only (RabbitMQ 3.x),
    a server that starts while another reruns a run hears of it when a requester calls the
    roll (as `cascade rerun` does there before it picks a server): the other announces
    again, and a request to rerun the same run is refused there too."""
    broker = InMemoryBroker(retained_to_wildcards=False, shared_subscriptions=False)
    pipeline = Pipeline()
    async with (
        _requester(broker) as asker,
        this_server(broker, tmp_path, {"etl": pipeline.workflow}, asker) as (_, recorder),
    ):
        first = await asker.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await asker.idle()
        assert first.run_id is not None
        pipeline.broken, pipeline.gate = False, asyncio.Event()
        live = await asker.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        await asker.until(lambda: (a := asker.announced) is not None and a.running == 1)
        seen = asker.announcements
        async with another_server(broker, tmp_path, {"etl": pipeline.workflow}):
            await asker.connector.publish(rollcall_topic(), {"rollcall": 1}, qos=1)
            await asker.until(lambda: asker.announcements > seen)  # the roll call's answer
            refused = await asker.ask(
                StartRequest(id="r2", workflow="etl", rerun_of=first.run_id), to="server-2"
            )
        assert refused.error == f"a rerun of {first.run_id} is live: on {SOURCE}"
        pipeline.gate.set()
        await recorder.until(lambda: live.run_id in _ends(recorder))


@contextlib.asynccontextmanager
async def another_server(
    broker: InMemoryBroker, results: Path, workflows: dict[str, Callable[..., Any]]
) -> AsyncIterator[Engine]:
    """``server-2``, serving ``workflows`` and keeping its results in ``results``."""
    later = Engine(
        InMemoryConnector(broker, source_id="server-2"), heartbeat_interval=None, results=results
    )
    async with serving(later, workflows):
        await eventually(
            lambda: broker.retained(served_topic("local", "default", "server-2")) is not None
        )
        yield later


async def test_servers_that_share_only_a_store_rerun_a_run_once_and_take_a_request_once(
    tmp_path: Path,
) -> None:
    """Two servers on brokers of their own (neither hears the other's announcement) share a
    results store: while server-1 reruns a run, server-2 refuses to rerun it, naming the
    rerun; a request server-1 took is refused at server-2, naming its run; once the rerun
    ended, server-2 reruns the run."""
    here, there = InMemoryBroker(), InMemoryBroker()
    pipeline = Pipeline()
    workflows: dict[str, Callable[..., Any]] = {"etl": pipeline.workflow}
    async with (
        _requester(here) as asker,
        this_server(here, tmp_path, workflows, asker) as (_, recorder),
        _requester(there) as other_asker,
        another_server(there, tmp_path, workflows) as later,
    ):
        first = await asker.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await asker.idle()
        pipeline.broken, pipeline.gate = False, asyncio.Event()
        live = await asker.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        assert live.started
        twice = await other_asker.ask(
            StartRequest(id="r2", workflow="etl", rerun_of=first.run_id), to="server-2"
        )
        assert (twice.outcome, twice.error) == (
            "refused",
            f"already rerun as {live.run_id} on {SOURCE}",
        )
        copy = await other_asker.ask(
            StartRequest(id="r1", workflow="etl", rerun_of=first.run_id), to="server-2"
        )
        assert copy.error == f"request r1 was taken already: {live.run_id} on {SOURCE}"
        pipeline.gate.set()
        await recorder.until(lambda: live.run_id in _ends(recorder))
        await asker.idle()  # its run returned: its manifest is written
        after = await other_asker.ask(
            StartRequest(id="r3", workflow="etl", rerun_of=first.run_id), to="server-2"
        )
        assert after.started
        assert later.stats.starts_refused == 2


async def test_one_rerun_request_sent_to_two_servers_at_once_starts_one_run(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """The same request, addressed to both servers at the same moment: one run starts, the
    other server refuses it, naming that run by its claim in the store or, when that server's
    announcement came first, naming the server (test_servers_that_share_only_a_store... takes
    the claim alone)."""
    pipeline = Pipeline()
    workflows: dict[str, Callable[..., Any]] = {"etl": pipeline.workflow}
    async with (
        this_server(broker, tmp_path, workflows, requester) as (_, recorder),
        another_server(broker, tmp_path, workflows),
    ):
        first = await requester.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        pipeline.broken, pipeline.gate = False, asyncio.Event()
        request = StartRequest(id="r1", workflow="etl", rerun_of=first.run_id)
        for source in (SOURCE, "server-2"):
            await requester.connector.publish(
                addressed_start_topic("local", "default", "etl", source), request, qos=1
            )
        await requester.until(lambda: len([r for r in requester.replies if r.id == "r1"]) == 2)
        replies = sorted((r for r in requester.replies if r.id == "r1"), key=lambda r: r.outcome)
        refused, started = replies
        assert (refused.outcome, started.outcome) == ("refused", "started")
        assert refused.error in (
            f"request r1 was taken already: {started.run_id} on {started.source}",
            f"a rerun of {first.run_id} is live: on {started.source}",
        )
        pipeline.gate.set()


async def test_a_rerun_claim_dated_ahead_in_the_store_holds_nothing(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """Whoever may write the store writes a claim on a run's next rerun dated a year ahead: a
    rerun of that run is taken all the same (a claim holds for CLAIM_FRESH after its time)."""
    pipeline = Pipeline()
    async with this_server(broker, tmp_path, {"etl": pipeline.workflow}, requester) as (
        _,
        recorder,
    ):
        first = await requester.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        assert first.run_id is not None
        forged = tmp_path / "claims" / "reruns" / first.run_id / "1.json"
        forged.parent.mkdir(parents=True)
        ahead = time.time() + 365 * 86400
        forged.write_text(json.dumps({"run_id": "e" * 32, "source": "mallory", "at": ahead}))
        pipeline.broken = False
        again = await requester.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        assert (again.outcome, again.error) == ("started", "")
        await recorder.until(lambda: again.run_id in _ends(recorder))


class Looked(dict[str, int]):
    """A task's argument that counts how often the engine looks through it (``values``): as
    often as it builds the graph of the workflow that holds it."""

    looks = 0

    def values(self) -> Any:
        self.looks += 1
        return super().values()


async def test_a_served_rerun_builds_its_graph_once_as_a_served_start_does(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """A served rerun plans its run on the graph its check built, and hands that graph to its
    run: the workflow's calls are looked through no more often than a plain start's, and its
    run still ends as planned (the plan decided nothing for it)."""
    pipeline = Pipeline()
    looked = Looked(n=0)

    @task(name="report")
    def report(total: int, extra: dict[str, int]) -> int:
        return total + extra["n"]

    def workflow(n: int = 5) -> Any:
        return report(pipeline.workflow(n), looked)

    async with this_server(broker, tmp_path, {"etl": workflow}, requester) as (_, recorder):
        probe_looks = looked.looks  # serving built it once, to list its graph's Params
        first = await requester.ask(StartRequest(id="s1", workflow="etl", params={"n": 4}))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        start_looks = looked.looks - probe_looks
        assert start_looks > 0
        pipeline.broken = False
        assert first.run_id is not None
        again = await requester.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        await recorder.until(lambda: again.run_id in _ends(recorder))
        assert [p.action for p in again.plan] == ["reuse", "run", "run", "run"]
        assert again.run_id is not None
        assert _ends(recorder)[again.run_id] == "Succeeded"
        assert pipeline.calls == {"extract": 1, "transform": 2, "load": 1}
        assert looked.looks - probe_looks - start_looks == start_looks


async def test_a_served_rerun_runs_the_routes_and_items_its_plan_decided_on_the_same_graph(
    broker: InMemoryBroker, requester: Requester, tmp_path: Path
) -> None:
    """The plan of a served rerun decides a router's choice and a map's items in a state of
    its own: the run it hands its graph to decides them again from the start, as planned."""
    calls: list[str] = []
    broken = [True]

    @task(name="pick")
    def pick() -> str:
        calls.append("pick")
        return "csv"

    @task(name="sizes")
    def sizes() -> list[int]:
        calls.append("sizes")
        return [1, 2, 3]

    @task(name="double")
    def double(size: int) -> int:
        calls.append(f"double {size}")
        return size * 2

    @task(name="load_csv")
    def load_csv() -> str:
        calls.append("load_csv")
        return "csv"

    @task(name="load_sqlite")
    def load_sqlite() -> str:
        calls.append("load_sqlite")
        return "sqlite"

    @task(name="report")
    def report(loaded: str, doubled: list[int]) -> str:
        calls.append("report")
        if broken[0]:
            raise ValueError("not yet")
        return f"{loaded} {sum(doubled)}"

    def workflow() -> Any:
        load: Router[str] = Router(pick(), {"csv": load_csv(), "sqlite": load_sqlite()})
        return report(load, double.map(size=sizes()))

    async with this_server(broker, tmp_path, {"etl": workflow}, requester) as (_, recorder):
        first = await requester.ask(StartRequest(id="s1", workflow="etl"))
        await recorder.until(lambda: first.run_id in _ends(recorder))
        await requester.idle()
        assert first.run_id is not None
        broken[0] = False
        calls.clear()
        again = await requester.ask(StartRequest(id="r1", workflow="etl", rerun_of=first.run_id))
        await recorder.until(lambda: again.run_id in _ends(recorder))
        planned = {p.task_name: p.action for p in again.plan}
        assert planned["load_sqlite"] == "skip"
        assert planned["report"] == "run"
        assert again.run_id is not None
        assert _ends(recorder)[again.run_id] == "Succeeded"
        assert calls == ["report"]  # the rest reused, the branch not chosen never run
        skipped = {
            e.task_name: e.error
            for e in recorder.events
            if isinstance(e, TaskSkipped) and e.run_id == again.run_id
        }
        assert skipped == {"load_sqlite": "not routed"}
