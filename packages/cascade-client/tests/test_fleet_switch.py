"""watch's switch: the runs' events while the summaries count fewer live runs than the
threshold, the summaries alone from there (the telemetry unsubscribed), back below 80 %."""

from __future__ import annotations

from datetime import datetime, timezone

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import (
    Envelope,
    StatusMessage,
    TaskStateEvent,
    events_topic,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.summaries import EngineSummary, RunTally, summary_topic
from cascade.reader import ReaderModel, TelemetrySwitch


def _summary(source: str, live: int) -> EngineSummary:
    now = datetime.now(timezone.utc).isoformat()
    return EngineSummary(source=source, ts=now, runs=RunTally(running=live), more_live=live)


def _event(run_id: str, task: str) -> Envelope:
    body = TaskStateEvent(task_id=task, task_name=task, state="RUNNING")
    return Envelope(run_id=run_id, org_id="o", project_id="p", source="busy", body=body)


async def test_the_switch_unsubscribes_the_telemetry_at_the_threshold_and_back_below_80_percent(
    broker: InMemoryBroker,
) -> None:
    """At 10 live runs (the threshold) the events stop being read and the runs are forgotten;
    at 8 it stays in fleet mode, at 7 (below 80 %) it reads them again."""
    state = ReaderModel()
    async with (
        InMemoryConnector(broker, presence=False) as reader,
        InMemoryConnector(broker, presence=False) as engine,
    ):
        await reader.subscribe(summary_topic("busy"), state.apply)
        await reader.subscribe(status_topic("busy"), state.apply)
        online = StatusMessage(status="online", source="busy", session=1)
        await engine.publish(status_topic("busy"), online, retain=True)
        switch = TelemetrySwitch(reader, state, telemetry_filter(), state.apply, 10)

        async def summarise(live: int) -> bool:
            await engine.publish(summary_topic("busy"), _summary("busy", live), retain=True)
            await broker.idle()
            return await switch.update()

        async def event(run_id: str) -> None:
            await engine.publish(events_topic("o", "p", run_id), _event(run_id, "t"))
            await broker.idle()

        assert (await summarise(9), switch.mode, switch.subscribed) == (False, "events", True)
        await event("r1")
        assert list(state.runs) == ["r1"]
        assert (await summarise(10), switch.mode, switch.subscribed) == (True, "fleet", False)
        assert state.runs == {}
        await event("r2")
        assert state.runs == {}  # not applied: nothing subscribed
        assert (await summarise(8), switch.mode) == (False, "fleet")
        assert (await summarise(7), switch.mode, switch.subscribed) == (True, "events", True)
        await event("r3")
        assert list(state.runs) == ["r3"]
        assert switch.said() == {"mode": "events", "live_runs": 7, "engines": 1, "threshold": 10}
