"""A run lost with its engine on the dashboard: the broker's word that its engine went offline
changes its row and its page at once (``Lost``, its clock stopped at the death, where a carry-on
took it), its held tasks leave the Decisions list, and its engine's row lists no live run but
the runs lost with it; the pages' streams send each change, though the run sent nothing."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Literal

from cascade.connector_kit.testing import received, telemetry
from cascade.dashboard import DashboardHub
from cascade.dashboard.live import DashboardModel, Follower
from cascade.interfaces import (
    Hold,
    LifecycleEvent,
    Message,
    StatusMessage,
    TaskStateEvent,
    status_topic,
)
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.summaries import EngineSummary, RunTally, TaskTally, summary_messages

T0 = time.time()
GATE = Hold(type="decision", kind="approval", attempt=1, deadline=T0 + 3600, default="fail")
LOST, CARRY_ON = "a" * 32, "b" * 32


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _status(status: Literal["online", "offline"], source: str) -> Message:
    return received(status_topic(source), StatusMessage(status=status, source=source, session=1))


def _started(run_id: str, source: str, origin: RunOrigin | None = None) -> Message:
    body = LifecycleEvent(event="ENGINE_STARTED", tasks=2, origin=origin, name="etl")
    return telemetry(body, run_id=run_id, source=source, seq=1)


def _gate(run_id: str, source: str) -> Message:
    body = TaskStateEvent(task_id="approve", task_name="approve", state="BLOCKED", held_by=[GATE])
    return telemetry(body, run_id=run_id, source=source, seq=2)


def _carry_on() -> RunOrigin:
    return RunOrigin(workflow="etl", carried_on_from=LOST, lost_engine="srv-1", carry_ons=1)


def _model(model: DashboardModel) -> None:
    """``srv-1`` runs ``LOST`` with a gate held; ``srv-2`` is online."""
    for message in (_status("online", "srv-1"), _status("online", "srv-2")):
        model.apply(message)
    model.apply(_started(LOST, "srv-1"))
    model.apply(_gate(LOST, "srv-1"))


def _data(event: bytes | None) -> dict[str, Any]:
    assert event is not None
    data: dict[str, Any] = json.loads(event.split(b"data: ", 1)[1])
    return data


def _upserted(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["run_id"]: run for run in data.get("runs", {}).get("upsert", [])}


def test_a_run_lost_with_its_engine_reads_lost_its_clock_stopped_and_holds_nothing() -> None:
    clock = Clock()
    model = DashboardModel(clock=clock)
    _model(model)
    assert [t["run_id"] for t in model.held.listed()["tasks"]] == [LOST]
    clock.now += 7
    model.apply(_status("offline", "srv-1"))  # its will
    clock.now += 400  # the page is read later: the run's clock stopped at the death
    summary = model.run_summary(model.state.runs[LOST])
    assert summary["status"] == "Lost"
    assert (summary["lost_at"], summary["ended"]) == (T0 + 7, T0 + 7)
    assert (summary["carried_on_as"], summary["carried_on_by"]) == (None, None)
    assert model.held.listed() == {"tasks": [], "total": 0}
    assert model.run_key(model.state.runs[LOST])[0] == 1  # listed among the ended


async def test_the_streams_send_the_death_and_the_carry_on_though_the_run_sent_nothing(
    hub: DashboardHub,
) -> None:
    model = hub.model
    _model(model)
    page = Follower.asked(hub, {"since": "0", "run": LOST}, controls=True)
    first = _data(page.next_event())
    assert [t["run_id"] for t in first["held"]["tasks"]] == [LOST]
    assert page.next_event() is None
    model.apply(_status("offline", "srv-1"))
    died = model.state.runs[LOST].lost_at
    assert died is not None
    lost = _data(page.next_event())
    row = _upserted(lost)[LOST]
    assert (row["status"], row["ended"], row["lost_at"]) == ("Lost", died, died)
    assert lost["run"]["status"] == "Lost"
    assert lost["held"]["total"] == 0
    model.apply(_started(CARRY_ON, "srv-2", _carry_on()))
    model.apply(_gate(CARRY_ON, "srv-2"))
    carried = _data(page.next_event())
    row = _upserted(carried)[LOST]
    assert (row["carried_on_as"], row["carried_on_by"]) == (CARRY_ON, "srv-2")
    assert carried["run"]["carried_on_as"] == CARRY_ON
    assert [t["run_id"] for t in carried["held"]["tasks"]] == [CARRY_ON]


def test_a_lost_run_first_heard_of_from_its_carry_on_ended_at_its_engine_s_death() -> None:
    """A dashboard started after the death: the broker keeps the engine's offline status."""
    clock = Clock()
    model = DashboardModel(clock=clock)
    model.apply(
        received(
            status_topic("srv-1"),
            StatusMessage(status="offline", source="srv-1", session=1),
            retain=True,
        )
    )
    model.apply(_started(CARRY_ON, "srv-2", _carry_on()))
    summary = model.run_summary(model.state.runs[LOST])
    assert (summary["status"], summary["carried_on_as"]) == ("Lost", CARRY_ON)
    assert summary["started"] is not None
    assert summary["ended"] is not None
    assert summary["started"] <= summary["ended"]


def test_an_offline_engine_lists_no_live_run_nor_held_task_but_its_lost_runs() -> None:
    clock = Clock()
    model = DashboardModel(clock=clock)
    _model(model)
    summary = EngineSummary(
        source="srv-1",
        ts=datetime.now(timezone.utc).isoformat(),
        runs=RunTally(running=1),
        tasks=TaskTally(running=1, blocked=1, held=1, completed=3),
        more_live=1,  # the live run it does not list
    )
    for topic, said in summary_messages(summary):
        model.apply(received(topic, said, retain=True))
    assert model.snapshot()["engines"][0]["summary"]["live_runs"] == 1
    model.apply(_status("offline", "srv-1"))
    model.apply(_started(CARRY_ON, "srv-2", _carry_on()))
    (engine,) = [e for e in model.snapshot()["engines"] if e["source"] == "srv-1"]
    assert engine["summary"]["live_runs"] == 0
    assert engine["summary"]["runs"]["running"] == 0
    assert engine["summary"]["tasks"]["held"] == engine["summary"]["tasks"]["running"] == 0
    assert engine["summary"]["tasks"]["completed"] == 3
    assert engine["lost"] == {"runs": 1, "carried_on": 1}
    streamed = json.loads(model.engine_json(model.state.engines["srv-1"]))
    assert streamed["lost"] == {"runs": 1, "carried_on": 1}
