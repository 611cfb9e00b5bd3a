"""A run whose engine dies is lost in the reader model when the broker says so (its engine's
offline status), over for every view (its held tasks leave the list to decide), and says
where a carry-on took it; a new event from its engine back online brings it back. Claims of a
carry-on are believed only for a run of the claimer's place, of the engine it names, once that
engine is offline."""

from __future__ import annotations

import time
from typing import Literal

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received, telemetry
from cascade.interfaces import (
    Hold,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    status_filter,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.reader import LostRun, ReaderModel, RunView, held_tasks, lost_run

T0 = time.time()
GATE = Hold(type="decision", kind="approval", attempt=1, deadline=T0 + 3600, default="fail")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _status(
    status: Literal["online", "offline"], source: str, session: int, reason: str | None = None
) -> Message:
    message = StatusMessage(status=status, source=source, session=session, reason=reason)
    return received(status_topic(source), message)


def _started(
    run_id: str, source: str, origin: RunOrigin | None = None, org_id: str = "local"
) -> Message:
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=2, origin=origin, name="etl")
    return telemetry(body, run_id=run_id, source=source, seq=1, org_id=org_id)


def _gate(run_id: str, source: str, seq: int) -> Message:
    body = TaskStateEvent(task_id="approve", task_name="approve", state="BLOCKED", held_by=[GATE])
    return telemetry(body, run_id=run_id, source=source, seq=seq)


def _carry_on(lost: str, engine: str | None = "srv-1", **place: str) -> RunOrigin:
    return RunOrigin(workflow="etl", carried_on_from=lost, lost_engine=engine, carry_ons=1)


def _model() -> tuple[ReaderModel, Clock, list[RunView]]:
    clock = Clock()
    model = ReaderModel(clock=clock)
    changed: list[RunView] = []
    model.run_watchers.append(changed.append)
    model.apply(_status("online", "srv-1", 1))
    model.apply(_status("online", "srv-2", 1))
    model.apply(_started("run-1", "srv-1"))
    model.apply(_gate("run-1", "srv-1", 2))
    return model, clock, changed


def test_a_run_whose_engine_goes_offline_is_lost_over_and_holds_nothing() -> None:
    model, clock, changed = _model()
    assert [held.run_id for held in held_tasks(model)] == ["run-1"]
    clock.now += 5
    model.apply(_status("offline", "srv-1", 1))  # its will: the broker's word
    run = model.runs["run-1"]
    assert (run.status, run.lost, run.lost_at, run.finished_at) == ("Lost", True, T0 + 5, T0 + 5)
    assert run.finished
    assert held_tasks(model) == []  # nobody can decide for a dead engine
    assert changed == [run]
    assert run.carried_on_as is None
    assert run.tasks["approve"].state == "HELD"  # what it knew stays to be read


def test_a_carry_on_says_where_the_lost_run_went() -> None:
    model, _, changed = _model()
    model.apply(_status("offline", "srv-1", 1))
    model.apply(_started("run-2", "srv-2", _carry_on("run-1")))
    lost = model.runs["run-1"]
    assert (lost.status, lost.carried_on_as, lost.carried_on_by) == ("Lost", "run-2", "srv-2")
    assert changed == [lost, lost]
    assert model.runs["run-2"].status == "Running"
    assert [held.run_id for held in held_tasks(model)] == []


def test_a_carry_on_heard_before_the_death_is_applied_when_it_comes() -> None:
    """Two connections, two orders: the carry-on's start may reach a reader before the will."""
    model, _, _ = _model()
    model.apply(_started("run-2", "srv-2", _carry_on("run-1")))
    assert model.runs["run-1"].status == "Running"  # no death heard: a claim is not one
    assert model.runs["run-1"].carried_on_as is None
    model.apply(_status("offline", "srv-1", 1))
    assert model.runs["run-1"].carried_on_as == "run-2"


def test_a_late_reader_knows_a_lost_run_from_its_carry_on() -> None:
    clock = Clock()
    model = ReaderModel(clock=clock)
    retained = StatusMessage(status="offline", source="srv-1", session=1)
    model.apply(received(status_topic("srv-1"), retained, retain=True))
    model.apply(_started("run-2", "srv-2", _carry_on("run-1")))
    lost = model.runs["run-1"]
    assert (lost.status, lost.source, lost.name) == ("Lost", "srv-1", "etl")
    assert (lost.carried_on_as, lost.carried_on_by) == ("run-2", "srv-2")
    assert (lost.org_id, lost.project_id) == ("local", "default")


def test_a_claim_of_another_place_or_engine_or_of_a_live_engine_changes_nothing() -> None:
    model, _, _ = _model()
    model.apply(_status("offline", "srv-1", 1))
    elsewhere = _started("run-2", "srv-2", _carry_on("run-1"), org_id="globex")
    model.apply(elsewhere)
    model.apply(_started("run-3", "srv-2", _carry_on("run-1", engine="srv-9")))
    assert model.runs["run-1"].carried_on_as is None
    assert model.lost.refused == 2
    # a late reader: a claim naming an engine online here makes no lost run
    late = ReaderModel()
    late.apply(_status("online", "srv-1", 1))
    late.apply(_started("run-2", "srv-2", _carry_on("run-1")))
    assert "run-1" not in late.runs


def test_a_straggler_leaves_the_run_lost_and_its_engine_back_brings_it_back() -> None:
    model, _, changed = _model()
    model.apply(_status("offline", "srv-1", 1))
    done = TaskStateEvent(task_id="extract", task_name="extract", state="COMPLETED")
    model.apply(telemetry(done, run_id="run-1", source="srv-1", seq=3))  # sent before it died
    run = model.runs["run-1"]
    assert (run.status, run.tasks["extract"].state) == ("Lost", "COMPLETED")
    model.apply(_status("online", "srv-1", 2))  # cut off, not dead: it reconnected
    running = TaskStateEvent(task_id="load", task_name="load", state="RUNNING")
    model.apply(telemetry(running, run_id="run-1", source="srv-1", seq=4))
    assert (run.status, run.lost, run.finished) == ("Running", False, False)
    assert [held.run_id for held in held_tasks(model)] == ["run-1"]
    assert changed[-1] is run


def test_an_end_heard_after_the_will_says_how_the_run_went() -> None:
    model, _, _ = _model()
    model.apply(_status("offline", "srv-1", 1))
    end = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
    model.apply(telemetry(end, run_id="run-1", source="srv-1", seq=3))
    run = model.runs["run-1"]
    assert (run.status, run.lost, run.finished) == ("Succeeded", False, True)


def test_a_shutdown_with_a_run_not_ended_loses_it_and_a_clean_one_loses_none() -> None:
    model, _, _ = _model()
    model.apply(_started("run-9", "srv-2"))
    end = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
    model.apply(telemetry(end, run_id="run-9", source="srv-2", seq=2))
    model.apply(_status("offline", "srv-2", 1, reason="shutdown"))
    model.apply(_status("offline", "srv-1", 1, reason="shutdown"))
    assert model.runs["run-9"].status == "Succeeded"
    assert model.runs["run-1"].status == "Lost"


async def test_a_crashed_engine_connection_loses_its_run_in_a_reader_over_a_broker() -> None:
    """The will through a broker (the in-memory one): the reader sees the run lost."""
    model = ReaderModel()
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(status_filter(), model.apply)
        await reader.subscribe(telemetry_filter(), model.apply)
        engine = InMemoryConnector(broker, source_id="srv-1")
        await engine.connect()
        envelope = _started("run-1", "srv-1")
        await engine.publish(envelope.topic, envelope.raw)
        await broker.idle()
        assert model.runs["run-1"].status == "Running"
        await engine.crash()
        await broker.idle()
        assert model.runs["run-1"].status == "Lost"


def test_a_view_of_statuses_and_summaries_alone_knows_a_run_lost_and_where_it_went() -> None:
    """What `cascade status` reads (no telemetry): an offline engine whose last summary lists
    the run live, and a summary of the run's org and project listing its carry-on; a claim of
    another project carries nothing on. A run listed by an engine online is not lost."""
    model = ReaderModel()
    now = "2026-11-29T05:00:00+00:00"

    def listed(run_id: str, project: str = "default", lost: str | None = None) -> SummaryRun:
        return SummaryRun(
            run_id=run_id, org_id="local", project_id=project, status="Running", started=now,
            tasks=TaskTally(running=1), carried_on_from=lost,
        )  # fmt: skip

    def summarise(source: str, *runs: SummaryRun) -> None:
        summary = EngineSummary(source=source, runs=RunTally(running=len(runs)), listed=[*runs])
        for topic, said in summary_messages(summary):
            model.apply(received(topic, said, retain=True))

    dead = StatusMessage(status="offline", source="srv-1", session=1)
    model.apply(received(status_topic("srv-1"), dead, retain=True))
    model.apply(_status("online", "srv-2", 1))
    model.apply(_status("online", "srv-3", 1))
    summarise("srv-1", listed("run-1"), listed("run-3"))
    summarise("srv-3", listed("run-8", "other", lost="run-1"))
    assert lost_run(model, "run-1") == LostRun("run-1", "srv-1")
    summarise("srv-2", listed("run-9", lost="run-1"), listed("run-4"))
    assert lost_run(model, "run-1") == LostRun("run-1", "srv-1", None, "run-9", "srv-2")
    assert lost_run(model, "run-4") is None  # its engine is online
    assert lost_run(model, "run-7") is None  # unknown
