"""Fleet mode: from a threshold of live runs the dashboard reads its engines' summaries, and a
run's events only while a page has it open.

An engine is played by a connector of the same in-memory broker: what it publishes reaches the
hub's subscriptions, or does not, as a real broker's would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import msgspec
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import (
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    events_topic,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.commands import snapshot_request_topic
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.reader import ReaderModel, TelemetrySwitch, subscribe_statuses
from cascade.runtime import Engine, task

STARTED = "2026-11-24T10:00:00+00:00"


def listed(run_id: str, status: str = "Running", **tasks: int) -> SummaryRun:
    return SummaryRun(
        run_id=run_id, org_id="local", project_id="p", status=status,  # type: ignore[arg-type]
        started=STARTED, tasks=TaskTally(**tasks), planned=10,
    )  # fmt: skip


def summary(source: str, live: int, *runs: SummaryRun, **fields: Any) -> EngineSummary:
    return EngineSummary(
        source=source,
        ts=datetime.now(timezone.utc).isoformat(),
        runs=RunTally(running=live),
        listed=list(runs),
        **{"more_live": max(0, live - sum(r.status == "Running" for r in runs)), **fields},
    )


class Publisher:
    """What an engine publishes, on the hub's broker."""

    def __init__(self, broker: InMemoryBroker, connector: InMemoryConnector) -> None:
        self.broker = broker
        self.connector = connector
        self.announced: set[str] = set()
        self.placed: dict[str, set[str]] = {}  # the summaries' topics per org and project

    async def summarise(self, value: EngineSummary) -> None:
        """The summary, its source announced online first (as every engine does)."""
        if value.source not in self.announced:
            await self.status(value.source, "online")
        sent = summary_messages(value)
        placed = {topic for topic, _ in sent[:-1]}
        gone = self.placed.get(value.source, set()) - placed
        self.placed[value.source] = placed
        for topic in gone:  # a place none of its listed runs is of any more: cleared
            await self.connector.publish(topic, b"", qos=0, retain=True)
        for topic, said in sent:
            await self.connector.publish(topic, said, qos=0, retain=True)
        await self.broker.idle()

    async def status(self, source: str, state: str) -> None:
        said = StatusMessage(status=state, source=source, session=1)  # type: ignore[arg-type]
        await self.connector.publish(status_topic(source), said, qos=1, retain=True)
        self.announced.add(source)
        await self.broker.idle()

    async def event(self, run_id: str, source: str = "host-1") -> None:
        body = TaskStateEvent(task_id="t-1", task_name="t", state="RUNNING")
        message: Message = telemetry(body, run_id=run_id, source=source)
        await self.connector.publish(message.topic, message.raw, qos=1)
        await self.broker.idle()


@pytest.fixture
async def engine(broker: InMemoryBroker) -> AsyncIterator[Publisher]:
    connector = InMemoryConnector(broker, presence=False)
    await connector.connect()
    yield Publisher(broker, connector)
    await connector.disconnect()


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., Any]]:
    """Starts hubs on a broker (stopped after the test)."""
    hubs: list[DashboardHub] = []

    async def start(broker: InMemoryBroker, **options: Any) -> DashboardHub:
        hub = DashboardHub(InMemoryConnector(broker, presence=False), timeout=2.0, **options)
        await hub.start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


async def settled(hub: DashboardHub) -> None:
    await asyncio.wait_for(hub.telemetry.settled.wait(), 5)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition`` (the hub has no event for each one a test looks at)."""

    async def wait() -> None:
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def state(hub: DashboardHub, **params: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/api/state", params=params)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_at_the_threshold_every_runs_telemetry_is_no_longer_read(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    hub = await started(broker, fleet_threshold=3)
    await engine.summarise(summary("host-1", 2, listed("run-a")))
    await engine.event("run-a")
    assert hub.model.fleet.mode == "events"
    assert "run-a" in hub.model.state.runs
    assert (await state(hub))["mode"] == "events"

    await engine.summarise(summary("host-1", 3, listed("run-a"), listed("run-b")))
    assert hub.model.fleet.mode == "fleet"
    await settled(hub)
    await engine.event("run-c")
    assert hub.model.state.runs == {}  # run-c unread; run-a, no longer read, forgotten
    answer = await state(hub)
    assert answer["mode"] == "fleet"
    assert answer["fleet"]["live_runs"] == 3
    assert [r["run_id"] for r in answer["runs"]] == ["run-a", "run-b"]
    assert all(r["from_summary"] for r in answer["runs"])


async def test_from_the_start_with_threshold_0_and_the_totals_are_the_readers(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    await engine.status("host-1", "online")
    await engine.status("host-2", "offline")
    await engine.status("host-3", "online")
    await engine.summarise(
        summary("host-1", 2, listed("r1", running=2, pending=3, blocked=2, held=1),
                listed("r2", "Succeeded"),
                tasks=TaskTally(running=2, pending=3, completed=7), events_per_s=1.5, dropped=2)
    )  # fmt: skip
    await engine.summarise(summary("host-2", 4, listed("r3")))  # gone: its runs are stranded
    hub = await started(broker, fleet_threshold=0)
    await engine.event("r1")
    assert hub.model.state.runs == {}  # never subscribed to every run's telemetry

    answer = await state(hub, limit="10")
    assert answer["mode"] == "fleet"
    fleet, reader = answer["fleet"], hub.model.state.fleet()
    assert (fleet["engines"], fleet["online"], fleet["without_summary"]) == (3, 2, 1)
    assert (fleet["engines"], fleet["online"], fleet["without_summary"]) == (
        reader.engines, reader.online, reader.without_summary)  # fmt: skip
    assert fleet["live_runs"] == reader.live_runs == 2
    assert fleet["stranded"] == reader.stranded == 4
    assert fleet["tasks"]["completed"] == reader.tasks.completed == 7
    assert (fleet["events_per_s"], fleet["dropped"]) == (1.5, 2)
    assert fleet["threshold"] == 0
    host_1 = next(e for e in answer["engines"] if e["source"] == "host-1")
    assert host_1["summary"]["live_runs"] == 2
    assert host_1["summary"]["tasks"]["pending"] == 3
    runs = {r["run_id"]: r for r in answer["runs"]}
    assert list(runs) == ["r1", "r3", "r2"]  # running first
    # the summary's blocked counts its held too: shown apart, as the run's own events show them
    assert runs["r1"]["counts"] == {"RUNNING": 2, "PENDING": 3, "BLOCKED": 1, "HELD": 1}
    assert (runs["r1"]["total"], runs["r2"]["status"]) == (10, "Succeeded")


async def test_the_kept_totals_are_the_readers_through_every_kind_of_engine(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    """The fleet's totals, kept summary by summary from each engine's share, are those the
    reader adds up over every engine, whatever each is: online with a summary, gone with live
    runs (stranded), unconfirmed (a summary without a status), without a summary, and as they
    change from one to another."""
    hub = await started(broker, fleet_threshold=0)

    def agree() -> None:
        kept, reader = hub.model.fleet.totals(), hub.model.state.fleet()
        assert (kept["engines"], kept["online"], kept["without_summary"], kept["unconfirmed"]) == (
            reader.engines, reader.online, reader.without_summary, reader.unconfirmed)  # fmt: skip
        assert (kept["live_runs"], kept["stranded"], kept["dropped"]) == (
            reader.live_runs, reader.stranded, reader.dropped)  # fmt: skip
        assert kept["runs"] == msgspec.structs.asdict(reader.runs)
        assert kept["tasks"] == msgspec.structs.asdict(reader.tasks)
        assert kept["events_per_s"] == round(reader.events_per_s, 3)

    busy = summary("host-1", 2, listed("r1", running=2, pending=3), listed("r2", "Succeeded"),
                   tasks=TaskTally(running=2, completed=7),
                   events_per_s=1.5, dropped=2)  # fmt: skip
    await engine.summarise(busy)
    await engine.summarise(summary("host-2", 1, listed("r3"), tasks=TaskTally(running=1)))
    await engine.status("host-3", "online")  # no summary
    for topic, said in summary_messages(summary("stray", 5, listed("r9"))):
        # a summary whose source never said its status
        await engine.connector.publish(topic, said, qos=0, retain=True)
    await broker.idle()
    agree()
    await engine.status("host-2", "offline")  # its live run is stranded
    agree()
    carry_on = msgspec.structs.replace(listed("r4"), carried_on_from="r3")
    await engine.summarise(summary("host-3", 1, carry_on))  # host-3 carries r3 on
    agree()
    assert hub.model.fleet.totals()["stranded"] == 0
    await engine.summarise(summary("host-3", 0))  # a carry-on no longer listed
    agree()
    assert hub.model.fleet.totals()["stranded"] == 1
    await engine.summarise(summary("host-3", 1, carry_on))
    await engine.status("stray", "online")  # now vouched for
    agree()
    await engine.summarise(summary("host-1", 0, listed("r2", "Succeeded"), events_per_s=0.5))
    await engine.status("host-2", "online")
    agree()
    assert hub.model.fleet.totals()["engines"] == 4


async def test_an_opened_run_is_read_alone_and_released_after_the_delay(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    asked: list[Message] = []
    await engine.connector.subscribe(snapshot_request_topic("run-x"), asked.append)
    await engine.summarise(summary("host-1", 2, listed("run-x"), listed("run-y")))
    hub = await started(broker, fleet_threshold=0, release_after=0.2)

    hub.telemetry.open("run-x")
    hub.telemetry.open("run-x")  # a second page
    await settled(hub)
    await broker.idle()
    assert len(asked) == 1  # its engine is asked where the run is
    await engine.event("run-x")
    await engine.event("run-y")
    assert set(hub.model.state.runs) == {"run-x"}
    assert hub.telemetry.followed == {"run-x"}

    hub.telemetry.close("run-x")
    await asyncio.sleep(0.4)  # twice the delay: the other page has it open still
    assert hub.telemetry.followed == {"run-x"}
    hub.telemetry.close("run-x")
    assert hub.telemetry.followed == {"run-x"}  # not at once: a page may open it again
    await until(lambda: not hub.telemetry.followed)
    assert hub.model.state.runs == {}  # what was read of it is forgotten
    await engine.event("run-x")
    assert hub.model.state.runs == {}


async def test_a_look_at_a_run_in_the_state_reads_it_for_a_while(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    await engine.summarise(summary("host-1", 1, listed("run-x", running=1)))
    hub = await started(broker, fleet_threshold=0, release_after=0.2)
    answer = await state(hub, run="run-x")
    assert answer["run"]["from_summary"] is True  # its events not read yet
    assert answer["run"]["tasks"] == []
    await settled(hub)
    await engine.event("run-x")
    assert (await state(hub, run="run-x"))["run"]["tasks"][0]["task_id"] == "t-1"
    await until(lambda: not hub.telemetry.followed)


async def test_back_below_80_percent_every_runs_telemetry_is_read_again(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    hub = await started(broker, fleet_threshold=10)
    await engine.summarise(summary("host-1", 10))
    await settled(hub)
    for live in (9, 8):  # below the threshold, not below 80 % of it: no flapping
        await engine.summarise(summary("host-1", live))
        assert hub.model.fleet.mode == "fleet"
    await engine.event("run-z")
    assert hub.model.state.runs == {}
    await engine.summarise(summary("host-1", 7))
    assert hub.model.fleet.mode == "events"
    await settled(hub)
    await engine.event("run-z")
    assert set(hub.model.state.runs) == {"run-z"}
    assert (await state(hub))["mode"] == "events"


async def test_a_summary_listing_another_engines_run_changes_nothing_of_it(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    hub = await started(broker, fleet_threshold=0)
    await engine.summarise(summary("host-1", 1, listed("run-1", running=1)))
    await engine.summarise(summary("host-2", 1, listed("run-1", running=9)))
    [run] = (await state(hub))["runs"]
    assert (run["source"], run["counts"]) == ("host-1", {"RUNNING": 1})
    await engine.summarise(summary("host-1", 0))
    assert (await state(hub))["runs"] == []
    assert hub.model.fleet.keys == []


def test_events_topic_is_the_one_the_hub_filters() -> None:
    """The run's filter the hub subscribes to covers the topics an engine sends on."""
    from cascade.interfaces import telemetry_filter, topic_matches

    topic = events_topic("local", "p", "run-x")
    assert topic_matches(telemetry_filter(run_id="run-x"), topic)
    assert not topic_matches(telemetry_filter(run_id="run-y"), topic)


async def test_a_ghosts_summary_neither_switches_the_mode_nor_counts_as_an_engine_online(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    """One forged retained summary of a source that never announced itself (no status), even
    one that lists its live runs, is unconfirmed: the dashboard reads the runs' events."""
    hub = await started(broker, fleet_threshold=10)
    ghost = summary("ghost", 500)
    for topic, said in summary_messages(ghost):
        await engine.connector.publish(topic, said, qos=0, retain=True)
    await broker.idle()
    await engine.event("run-real")
    await settled(hub)
    answer = await state(hub)
    assert answer["mode"] == "events"
    fleet = answer["fleet"]
    assert (fleet["online"], fleet["unconfirmed"], fleet["live_runs"]) == (0, 1, 0)
    assert [run["run_id"] for run in answer["runs"]] == ["run-real"]


@task
async def wait_for(gate: asyncio.Event) -> int:
    await gate.wait()
    return 1


async def test_engines_without_summaries_put_it_in_fleet_mode_from_their_runs(
    broker: InMemoryBroker, started: Callable[..., Any]
) -> None:
    """Engines told to send no summaries (as engines before summaries): their live runs are
    counted from their own events while their status says online, so the dashboard and
    `cascade watch` switch to fleet mode at the threshold all the same, and count them."""
    hub = await started(broker, fleet_threshold=3)
    reader = ReaderModel()
    async with InMemoryConnector(broker, presence=False) as watching:
        await subscribe_statuses(watching, reader.apply)
        switch = TelemetrySwitch(watching, reader, telemetry_filter(), reader.apply, threshold=3)
        await switch.update()
        gate = asyncio.Event()
        engines = [Engine(InMemoryConnector(broker, source_id=f"host-{n}"), summaries=False,
                          heartbeat_interval=None) for n in range(4)]  # fmt: skip
        runs = [asyncio.create_task(e.run(wait_for(gate))) for e in engines]
        try:
            await until(lambda: hub.model.fleet.mode == "fleet")
            await settled(hub)
            answer = await state(hub)
            fleet = answer["fleet"]
            assert (fleet["engines"], fleet["online"], fleet["without_summary"]) == (4, 4, 4)
            assert fleet["live_runs"] == fleet["live_without_summary"] == 4
            assert {e["live_seen"] for e in answer["engines"]} == {1}
            assert await switch.update()  # watch's look at the live runs
            assert switch.mode == "fleet"
            assert switch.said()["live_runs"] == 4
        finally:
            gate.set()
            await asyncio.gather(*runs)
    # their runs ended while unread; they went offline: no live run is left counted
    await until(lambda: hub.model.fleet.live_runs == 0)
    assert hub.model.state.fleet().live_without_summary == 0


async def test_a_burst_of_run_starts_switches_before_any_summary(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    """Engines that start together: their runs' starts put the dashboard in fleet mode before
    their first summaries come; once a summary counts an engine's runs, its events do not."""
    hub = await started(broker, fleet_threshold=20)
    for n in range(25):
        await engine.status(f"host-{n}", "online")
    assert hub.model.fleet.mode == "events"
    for n in range(25):
        start = LifecycleEvent(event="ENGINE_STARTED", tasks=3)
        message = telemetry(start, run_id=f"run-{n}", source=f"host-{n}", seq=1)
        await engine.connector.publish(message.topic, message.raw, qos=1)
    await broker.idle()
    assert hub.model.fleet.mode == "fleet"
    assert hub.model.fleet.live_runs == 25
    await settled(hub)
    # the summaries come: each counts its engine's run once (not once more for its events)
    for n in range(25):
        await engine.summarise(summary(f"host-{n}", 1, listed(f"run-{n}")))
    fleet = (await state(hub))["fleet"]
    assert (fleet["live_runs"], fleet["live_without_summary"], fleet["without_summary"]) == (
        25, 0, 0)  # fmt: skip
    assert hub.model.fleet.mode == "fleet"


async def test_telemetry_alone_counts_no_live_run(
    broker: InMemoryBroker, engine: Publisher, started: Callable[..., Any]
) -> None:
    """Runs of sources that never announced a status switch nothing (a publisher cannot make
    a fleet with events alone): they are read as events."""
    hub = await started(broker, fleet_threshold=3)
    for n in range(5):
        await engine.event(f"run-{n}", source=f"ghost-{n}")
    assert hub.model.fleet.mode == "events"
    assert hub.model.fleet.live_runs == 0
    assert len(hub.model.state.runs) == 5
