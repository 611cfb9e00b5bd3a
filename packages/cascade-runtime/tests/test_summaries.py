"""The engine's retained summary: its runs and tasks added up, at a bounded rate."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Message
from cascade.interfaces.summaries import (
    EngineSummary,
    decode_summary,
    placed_summary_filter,
    summary_filter,
    summary_topic,
)
from cascade.runtime import Engine, RunCancelledError, TaskRunning, task
from cascade.runtime.testing import EventRecorder

MAX_SUMMARY_RUNS = 20  # the protocol's bound, as docs/protocol.md states it


class FailingPublish(InMemoryConnector):
    async def publish(self, *args: object, **kwargs: object) -> None:
        raise TimeoutError


@task
def double(x: int) -> int:
    return 2 * x


@task
def boom() -> None:
    raise ValueError("boom")


@task
async def wait_for(gate: asyncio.Event) -> int:
    await gate.wait()
    return 1


class Summaries:
    """The summaries a reader receives, each with when it arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, EngineSummary, bool]] = []
        self.changed = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.seen.append((time.monotonic(), decode_summary(message.raw), message.retain))
        self.changed.set()

    async def until(self, condition: object, timeout: float = 5.0) -> EngineSummary:
        async def wait() -> EngineSummary:
            while True:
                for _, summary, _ in reversed(self.seen):
                    if condition(summary):  # type: ignore[operator]
                        return summary
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    @property
    def last(self) -> EngineSummary:
        return self.seen[-1][1]


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> InMemoryBroker:
    """A broker; parametrized ``False``: one that sends retained messages to exact
    subscriptions only."""
    return InMemoryBroker(retained_to_wildcards=getattr(request, "param", True))


@pytest.fixture
async def summaries(broker: InMemoryBroker) -> AsyncIterator[Summaries]:
    """What a reader subscribed to every summary receives."""
    received = Summaries()
    async with InMemoryConnector(broker, presence=False, source_id="reader") as reader:
        await reader.subscribe(summary_filter(), received)
        yield received


async def test_a_run_leaves_its_final_figures_retained(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    connector = InMemoryConnector(broker, source_id="host-1")
    engine = Engine(connector, heartbeat_interval=None, org_id="acme", project_id="etl")
    assert await engine.run([double(i) for i in range(5)]) == [0, 2, 4, 6, 8]
    await summaries.until(lambda s: s.runs.succeeded == 1)

    final = summaries.last
    assert final.source == "host-1"
    assert (final.runs.running, final.runs.succeeded) == (0, 1)
    assert (final.tasks.completed, final.tasks.running) == (5, 0)
    assert final.events == 12  # started, RUNNING and COMPLETED of each task, stopped
    assert final.session == connector.session
    (run,) = final.listed
    assert (run.org_id, run.project_id, run.status, run.planned) == ("acme", "etl", "Succeeded", 5)
    assert run.ended is not None
    assert run.last_seq == 12
    retained = broker.retained(summary_topic("host-1"))
    assert retained is not None
    assert decode_summary(retained) == final


async def test_runs_of_engines_on_one_connector_add_up(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    """Two engines sharing a connector are one source: one summary counts both."""
    connector = InMemoryConnector(broker, source_id="host-1")
    await connector.connect()
    gate = asyncio.Event()
    first, second = Engine(connector), Engine(connector)
    runs = asyncio.gather(first.run(wait_for(gate)), second.run(wait_for(gate)))
    both = await summaries.until(lambda s: s.runs.running == 2)
    assert both.tasks.running == 2
    assert [r.status for r in both.listed] == ["Running"] * 2
    gate.set()
    await runs
    final = await summaries.until(lambda s: s.runs.succeeded == 2)
    assert (final.runs.running, final.tasks.completed) == (0, 2)
    await connector.disconnect()


async def test_failed_and_cancelled_runs_are_counted_by_how_they_ended(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    connector = InMemoryConnector(broker, source_id="host-1")
    await connector.connect()
    engine = Engine(connector, heartbeat_interval=None)
    with pytest.raises(Exception, match="boom"):
        await engine.run(boom())
    gate = asyncio.Event()
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    running = asyncio.create_task(engine.run(wait_for(gate)))
    await recorder.until(lambda: any(isinstance(e, TaskRunning) for e in recorder.events))
    engine.cancel(recorder.events[0].run_id, issued_by="ops")
    with pytest.raises(RunCancelledError):
        await running
    final = await summaries.until(lambda s: s.runs.failed == 2)
    assert (final.runs.succeeded, final.runs.cancelled) == (0, 1)
    assert (final.tasks.failed, final.tasks.cancelled) == (2, 1)
    assert [(r.status, r.cancelled) for r in final.listed] == [("Failed", True), ("Failed", False)]
    await connector.disconnect()


async def test_a_live_run_is_summarised_every_interval_and_never_twice_a_second(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    gate = asyncio.Event()
    engine = Engine(InMemoryConnector(broker, source_id="host-1"), heartbeat_interval=0.05)
    three = asyncio.gather(engine.run([wait_for(gate) for _ in range(3)]))
    await summaries.until(lambda s: s.tasks.running == 3)
    count = len(summaries.seen)
    await summaries.until(lambda s: len(summaries.seen) >= count + 2)
    gate.set()
    await three
    times = [at for at, _, _ in summaries.seen]
    # the last run's end is published at once; every other summary waited its turn
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    assert gaps
    assert min(gaps) >= 0.95


async def test_a_burst_of_runs_costs_a_summary_a_second(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    """Twenty runs starting and ending within moments: their starts share one summary."""
    connector = InMemoryConnector(broker, source_id="host-1")
    await connector.connect()
    engine = Engine(connector, heartbeat_interval=None)
    started = time.monotonic()
    await asyncio.gather(*(engine.run(double(i)) for i in range(20)))
    elapsed = time.monotonic() - started
    final = await summaries.until(lambda s: s.runs.succeeded == 20)
    assert (final.runs.running, final.events) == (0, 20 * 4)
    assert len(summaries.seen) <= 2 + math.ceil(elapsed)  # the first, one a second, the last
    await connector.disconnect()


async def test_a_failing_publish_costs_the_summary_never_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Engine(FailingPublish(presence=False), heartbeat_interval=None)
    assert await engine.run(double(2)) == 4
    assert any("summary publish failed: TimeoutError" in m for m in caplog.messages)


@pytest.mark.parametrize("broker", [False], indirect=True)
async def test_roll_calls_are_answered_where_wildcards_bring_no_retained_summary(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    """RabbitMQ 3.x sends retained messages to exact subscriptions only: a reader that asks
    (``{prefix}/rollcall``) gets the summary of every engine with a live run."""
    gate = asyncio.Event()
    engine = Engine(InMemoryConnector(broker, source_id="host-1"), heartbeat_interval=None)
    running = asyncio.create_task(engine.run(wait_for(gate)))
    await summaries.until(lambda s: s.runs.running == 1)  # the run's start, live
    heard = len(summaries.seen)
    async with InMemoryConnector(broker, presence=False, source_id="asker") as reader:
        await reader.publish("cascade/rollcall", {"rollcall": 1}, qos=1)
        answer = await summaries.until(lambda s: len(summaries.seen) > heard)
    assert (answer.source, answer.runs.running) == ("host-1", 1)
    gate.set()
    await running


@pytest.mark.parametrize("broker", [False], indirect=True)
async def test_roll_calls_are_answered_once_the_runs_have_ended(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    """A source whose connection lives on after its runs (a serving process) still answers a
    roll call with its summary, listing the runs that ended (a rerun finds them there)."""
    async with InMemoryConnector(broker, source_id="host-1") as connector:
        engine = Engine(connector, heartbeat_interval=None)
        with pytest.raises(Exception, match="boom"):
            await engine.run(boom())
        await summaries.until(lambda s: s.runs.failed == 1)
        heard = len(summaries.seen)
        async with InMemoryConnector(broker, presence=False, source_id="asker") as reader:
            await reader.publish("cascade/rollcall", {"rollcall": 1}, qos=1)
            answer = await summaries.until(lambda s: len(summaries.seen) > heard)
        assert (answer.source, answer.runs.running, answer.runs.failed) == ("host-1", 0, 1)
        assert [run.status for run in answer.listed] == ["Failed"]


@pytest.mark.parametrize("broker", [False], indirect=True)
async def test_a_flood_of_roll_calls_costs_a_bounded_number_of_summaries(
    broker: InMemoryBroker, summaries: Summaries, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone may call the roll: 30 calls at once, no run live, are answered 8 times (the
    burst) and maybe once more (the refill at 4 a second while they came); the rest are
    counted and logged, not queued."""
    async with InMemoryConnector(broker, source_id="host-1") as connector:
        assert await Engine(connector, heartbeat_interval=None).run(double(1)) == 2
        await summaries.until(lambda s: s.runs.succeeded == 1)
        heard = len(summaries.seen)
        async with InMemoryConnector(broker, presence=False, source_id="asker") as reader:
            started = time.monotonic()
            for _ in range(30):
                await reader.publish("cascade/rollcall", {"rollcall": 1}, qos=1)
            await broker.idle()
            refilled = math.floor((time.monotonic() - started) * 4)
        answers = len(summaries.seen) - heard
        assert 8 <= answers <= 8 + refilled
        assert any("roll calls over 4.0 a second left unanswered" in m for m in caplog.messages)


async def test_an_engine_told_not_to_publishes_no_summary(broker: InMemoryBroker) -> None:
    engine = Engine(InMemoryConnector(broker, source_id="host-1"), summaries=False)
    assert await engine.run(double(1)) == 2
    assert not [m for m in broker.history if "/summary/" in m.topic]
    assert [m for m in broker.history if "/telemetry/" in m.topic]


async def test_the_runs_are_listed_per_org_and_project_too(broker: InMemoryBroker) -> None:
    """Beside its own summary (whose topic names no org), the source lists the runs of each
    org and project on that place's topic, which an ACL binds to the login's orgs: a place
    whose runs are no longer listed (20 of another's since) has its summary cleared."""
    connector = InMemoryConnector(broker, source_id="host-1")
    await connector.connect()
    acme = Engine(connector, heartbeat_interval=None, org_id="acme", project_id="etl")
    globex = Engine(connector, heartbeat_interval=None, org_id="globex", project_id="web")
    await acme.run(double(1))
    await globex.run(double(2))
    own = broker.retained(summary_topic("host-1"))
    assert own is not None
    assert {(r.org_id, r.project_id) for r in decode_summary(own).listed} == {
        ("acme", "etl"),
        ("globex", "web"),
    }
    for org, project in (("acme", "etl"), ("globex", "web")):
        retained = broker.retained(f"cascade/summary/{org}/{project}/host-1")
        assert retained is not None
        placed = decode_summary(retained)
        assert placed.source == "host-1"
        assert [(r.org_id, r.project_id, r.status) for r in placed.listed] == [
            (org, project, "Succeeded")
        ]
        assert placed.tasks.completed == 1
    for i in range(MAX_SUMMARY_RUNS):
        await globex.run(double(i))
    assert broker.retained("cascade/summary/acme/etl/host-1") is None
    retained = broker.retained("cascade/summary/globex/web/host-1")
    assert retained is not None
    assert len(decode_summary(retained).listed) == MAX_SUMMARY_RUNS
    await connector.disconnect()


@pytest.mark.parametrize("broker", [False], indirect=True)
async def test_a_roll_call_is_answered_per_org_and_project_too(
    broker: InMemoryBroker, summaries: Summaries
) -> None:
    """Where wildcards bring no retained summary, the roll call's answer lists the runs on
    their place's topic as well."""
    placed = Summaries()
    gate = asyncio.Event()
    engine = Engine(InMemoryConnector(broker, source_id="host-1"), heartbeat_interval=None,
                    org_id="acme", project_id="etl")  # fmt: skip
    running = asyncio.create_task(engine.run(wait_for(gate)))
    await summaries.until(lambda s: s.runs.running == 1)  # the run's start, before listening
    async with InMemoryConnector(broker, presence=False, source_id="asker") as reader:
        await reader.subscribe(placed_summary_filter(), placed)
        await reader.publish("cascade/rollcall", {"rollcall": 1}, qos=1)
        answer = await placed.until(lambda s: s.runs.running == 1)
    assert [(r.org_id, r.project_id, r.status) for r in answer.listed] == [
        ("acme", "etl", "Running")
    ]
    gate.set()
    await running
