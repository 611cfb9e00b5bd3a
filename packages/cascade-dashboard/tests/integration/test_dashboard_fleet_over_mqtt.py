"""Fleet mode on a real broker: retained summaries make the overview, and a run's events are
read only once a page opens the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import httpx
import uvicorn

from cascade.connectors.mqtt import MqttConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import (
    EngineSummary,
    Envelope,
    RunTally,
    StatusMessage,
    SummaryRun,
    TaskStateEvent,
    TaskTally,
    events_topic,
    status_topic,
    summary_topic,
)
from cascade.metrics import bind
from cascade.testkit import RETAINED_EXACT_ONLY, BrokerEndpoint, skip_on_family

RUN = "a" * 32


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    job = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await job
        sock.close()


def event(prefix: str, task_id: str) -> tuple[str, Envelope]:
    body = TaskStateEvent(task_id=task_id, task_name="t", state="RUNNING")
    envelope = Envelope(
        ts=datetime.now(timezone.utc).isoformat(), run_id=RUN, org_id="o", project_id="p",
        source="host-1", body=body,
    )  # fmt: skip
    return events_topic("o", "p", RUN, prefix), envelope


async def first_event_with(lines: AsyncIterator[str], wanted: str) -> dict[str, Any]:
    """The first event of the stream whose data holds ``wanted``."""
    async for line in lines:
        if line.startswith("data: ") and wanted in line:
            found: dict[str, Any] = json.loads(line[6:])
            return found
    raise AssertionError(f"the stream ended before {wanted!r}")


# an engine answers the dashboard's roll call with its summary there (the runtime's tests)
@skip_on_family("rabbitmq", RETAINED_EXACT_ONLY)
async def test_summaries_make_the_overview_and_an_opened_runs_events_are_read(
    mqtt_broker: BrokerEndpoint,
) -> None:
    prefix = f"fleet-{uuid.uuid4().hex[:8]}"  # its own topics: retained summaries stay its own
    engine = MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, presence=False)
    listed = SummaryRun(
        run_id=RUN, org_id="o", project_id="p", status="Running",
        started=datetime.now(timezone.utc).isoformat(), tasks=TaskTally(running=4), planned=9,
    )  # fmt: skip
    summary = EngineSummary(
        source="host-1", runs=RunTally(running=1), tasks=TaskTally(running=4),
        events_per_s=2.5, listed=[listed],
    )  # fmt: skip
    async with engine:
        online = StatusMessage(status="online", source="host-1", session=1)
        await engine.publish(status_topic("host-1", prefix), online, qos=1, retain=True)
        await engine.publish(summary_topic("host-1", prefix), summary, qos=1, retain=True)
        hub = DashboardHub(
            MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, presence=False),
            timeout=5.0,
            fleet_threshold=0,
            release_after=0.5,
        )
        await hub.start()
        try:
            async with (
                serving(create_app(hub, DashboardSettings(token=None))) as base,
                httpx.AsyncClient(base_url=base, timeout=10) as http,
            ):
                state = (await http.get("/api/state")).json()
                assert state["mode"] == "fleet"
                assert state["fleet"]["live_runs"] == 1
                assert state["fleet"]["events_per_s"] == 2.5
                [engine_row] = state["engines"]
                assert engine_row["summary"]["tasks"]["running"] == 4
                [run_row] = state["runs"]
                assert (run_row["run_id"], run_row["from_summary"]) == (RUN, True)

                await engine.publish(*event(prefix, "before-open"), qos=1)
                await engine.flush()
                params = {"since": "0", "run": RUN}
                async with http.stream("GET", "/api/stream", params=params) as stream:
                    lines = stream.aiter_lines()
                    await first_event_with(lines, '"version"')  # the page is open
                    await asyncio.wait_for(hub.telemetry.settled.wait(), 10)
                    assert hub.telemetry.followed == {RUN}
                    await engine.publish(*event(prefix, "after-open"), qos=1)
                    seen = await asyncio.wait_for(first_event_with(lines, "after-open"), 10)
                tasks = {t["task_id"] for t in seen["tasks"]["upsert"]}
                assert "after-open" in tasks
                assert "before-open" not in set(hub.model.state.runs[RUN].tasks)
        finally:
            await hub.stop()
            await engine.publish(summary_topic("host-1", prefix), b"", qos=1, retain=True)
