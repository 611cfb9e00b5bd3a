"""A live engine whose telemetry never reaches the view (a broker's ACL drops it): the reader
model says so, from its summaries or from its connection closed again and again, and only
then."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from cascade.connector_kit.testing import InMemoryConnector, received, telemetry
from cascade.interfaces import (
    LifecycleEvent,
    Message,
    StatusMessage,
    status_filter,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.summaries import EngineSummary, SummaryRun, TaskTally, placed_summary_filter
from cascade.reader import FLAP_WINDOW, SILENT_AFTER, ReaderModel, silence_line

ALL = telemetry_filter()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).timestamp()

    def __call__(self) -> float:
        return self.now


def _summary(last_seq: int, *, run_id: str = "run-1", project: str = "etl") -> Message:
    run = SummaryRun(
        run_id=run_id, org_id="acme", project_id=project, status="Running",
        started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=1),
        last_seq=last_seq,
    )  # fmt: skip
    summary = EngineSummary(source="engine-1", session=1, events=last_seq, listed=[run])
    summary.runs.running = 1
    # the runs it lists are read on their org's and project's topic (the one an ACL binds)
    return received(f"cascade/summary/acme/{project}/engine-1", summary)


def _model(clock: Clock, *filters: str) -> ReaderModel:
    model = ReaderModel(clock=clock)
    model.telemetry_filters.update(filters)
    online = StatusMessage(status="online", source="engine-1", session=1)
    model.apply(received(status_topic("engine-1"), online, retain=True))
    return model


def test_events_a_summary_counts_that_never_arrive_are_said_after_a_while() -> None:
    clock = Clock()
    model = _model(clock, ALL)
    model.apply(_summary(0))
    clock.now += 1
    model.apply(_summary(12))
    assert model.silent_engines() == []  # an event may still come after its summary
    clock.now += SILENT_AFTER
    (engine,) = model.silent_engines()
    assert engine.source == "engine-1"
    assert engine.unheard == 12
    line = silence_line(engine)
    assert line.startswith("no telemetry from engine-1 reached this view")
    assert "connector needs sourced_topics=True" in line
    assert "telemetry of acme/etl" in line


def test_summaries_of_a_source_that_never_announced_a_status_are_no_silence() -> None:
    """Anyone who can publish may send summaries: those of a source without a status (an
    unconfirmed one, as the fleet's totals leave it out) never make it said silent."""
    clock = Clock()
    model = ReaderModel(clock=clock)
    model.telemetry_filters.add(ALL)
    model.apply(_summary(0))
    clock.now += 1
    model.apply(_summary(12))
    clock.now += SILENT_AFTER * 10
    assert model.silent_engines() == []
    online = StatusMessage(status="online", source="engine-1", session=1)
    model.apply(received(status_topic("engine-1"), online, retain=True))
    assert [e.source for e in model.silent_engines()] == ["engine-1"]  # confirmed now


def test_an_event_that_arrives_ends_it() -> None:
    clock = Clock()
    model = _model(clock, ALL)
    model.apply(_summary(0))
    model.apply(_summary(3))
    clock.now += SILENT_AFTER
    assert model.silent_engines()
    start = LifecycleEvent(event="ENGINE_STARTED")
    model.apply(telemetry(start, source="engine-1", seq=1, org_id="acme", project_id="etl"))
    assert model.silent_engines() == []


def test_events_that_arrived_before_their_summary_are_no_silence() -> None:
    clock = Clock()
    model = _model(clock, ALL)
    model.apply(_summary(0))
    start = LifecycleEvent(event="ENGINE_STARTED")
    model.apply(telemetry(start, source="engine-1", seq=1, org_id="acme", project_id="etl"))
    model.apply(_summary(5))
    clock.now += SILENT_AFTER * 10
    assert model.silent_engines() == []


def test_only_live_summaries_of_topics_this_view_reads_count() -> None:
    clock = Clock()
    retained = _model(clock, ALL)  # the first summary received: its events came before
    retained.apply(_summary(40))
    clock.now += SILENT_AFTER
    assert retained.silent_engines() == []
    other = _model(clock, telemetry_filter(project_id="web"))  # not what it reads
    other.apply(_summary(0))
    other.apply(_summary(9))
    clock.now += SILENT_AFTER
    assert other.silent_engines() == []
    nothing = _model(clock)  # reads no telemetry at all (status, fleet mode)
    nothing.apply(_summary(0))
    nothing.apply(_summary(9))
    clock.now += SILENT_AFTER
    assert nothing.silent_engines() == []


def test_a_summary_heard_before_the_view_read_telemetry_is_no_evidence() -> None:
    """A view that subscribed to the summaries first (the dashboard): the events counted
    between the summary it had and its telemetry subscription were not its to receive."""
    clock = Clock()
    model = _model(clock)
    model.apply(_summary(0))  # before any telemetry filter
    clock.now += 0.1
    model.telemetry_filters.add(ALL)
    model.apply(_summary(6))
    clock.now += SILENT_AFTER
    assert model.silent_engines() == []
    model.apply(_summary(9))  # both heard while reading: evidence
    clock.now += SILENT_AFTER
    assert [e.unheard for e in model.silent_engines()] == [3]


def _will(session: int) -> Message:
    return received(
        status_topic("engine-1"), StatusMessage(status="offline", source="engine-1",
        session=session)
    )  # fmt: skip


def test_a_connection_closed_as_soon_as_it_is_made_is_said() -> None:
    clock = Clock()
    model = _model(clock)
    for session in (2, 3, 4):
        online = StatusMessage(status="online", source="engine-1", session=session)
        model.apply(received(status_topic("engine-1"), online))
        model.apply(_will(session))
        clock.now += 0.2
    (engine,) = model.silent_engines()
    assert silence_line(engine).startswith("engine-1's connection is closed as soon as it is made")
    clock.now += 120  # it stopped
    assert model.silent_engines() == []


def test_wills_far_apart_and_clean_ends_are_no_silence() -> None:
    clock = Clock()
    model = _model(clock)
    for session in (2, 3, 4):
        model.apply(_will(session))
        clock.now += FLAP_WINDOW
    assert model.silent_engines() == []
    for session in (5, 6, 7):
        shutdown = StatusMessage(
            status="offline", source="engine-1", session=session, reason="shutdown"
        )
        model.apply(received(status_topic("engine-1"), shutdown))
    assert model.silent_engines() == []


async def test_an_engine_whose_events_the_broker_drops_is_said_over_the_in_memory_broker() -> None:
    """An engine's status and summaries arrive, its events do not (dropped as an ACL would):
    the view says so once SILENT_AFTER has passed."""
    clock = Clock()
    model = ReaderModel(clock=clock)
    async with InMemoryConnector(source_id="viewer") as reader:
        await reader.subscribe(status_filter(), model.apply)
        await reader.subscribe(placed_summary_filter(), model.apply)
        dropped: list[Message] = []
        await reader.subscribe(ALL, dropped.append)  # what the broker's ACL would not send
        model.telemetry_filters.add(ALL)
        async with InMemoryConnector(reader.broker, source_id="engine-1") as engine:
            await engine.publish(_summary(0).topic, _summary(0).payload, retain=True)
            start = telemetry(LifecycleEvent(event="ENGINE_STARTED"), source="engine-1", seq=1)
            await engine.publish(start.topic, start.payload)
            await engine.publish(_summary(1).topic, _summary(1).payload, retain=True)
            await asyncio.sleep(0)
            assert dropped
            assert model.silent_engines() == []
            clock.now += SILENT_AFTER
            assert [e.source for e in model.silent_engines()] == ["engine-1"]
