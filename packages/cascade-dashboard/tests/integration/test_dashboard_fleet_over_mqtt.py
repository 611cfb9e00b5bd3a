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
from cascade.interfaces import Envelope, StatusMessage, TaskStateEvent, events_topic, status_topic
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.metrics import bind
from cascade.runtime import Engine, task
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
        sent = summary_messages(summary, prefix)  # its run listed on o/p's topic, then its own
        for topic, said in sent:
            await engine.publish(topic, said, qos=1, retain=True)
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
            for topic, _ in sent:
                await engine.publish(topic, b"", qos=1, retain=True)


@task
async def held_until(gate: asyncio.Event) -> int:
    await gate.wait()
    return 1


async def test_engines_without_summaries_switch_it_to_fleet_mode_and_the_lists_stay_bounded(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """Three engines that send no summaries, on a real broker, against a threshold of 3: their
    runs' events put the dashboard in fleet mode and count as its live runs (a run started
    after the switch goes unread, so the threshold is the third's); the per-source
    lists' totals and their pages answer, and the page's stream ticks within a second."""
    prefix = f"fleet-{uuid.uuid4().hex[:8]}"
    hub = DashboardHub(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix, presence=False),
        timeout=5.0,
        fleet_threshold=3,
    )
    await hub.start()
    gate = asyncio.Event()
    engines = [
        Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, topic_prefix=prefix,
                             source_id=f"host-{n}"), summaries=False, heartbeat_interval=None)
        for n in range(3)
    ]  # fmt: skip
    runs = [asyncio.create_task(engine.run(held_until(gate))) for engine in engines]
    try:
        async with (
            serving(create_app(hub, DashboardSettings(token=None))) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):
            for _ in range(200):  # the runs' starts reach it over the broker
                if hub.model.fleet.mode == "fleet":
                    break
                await asyncio.sleep(0.05)
            state = (await http.get("/api/state")).json()
            assert state["mode"] == "fleet"
            fleet = state["fleet"]
            assert (fleet["without_summary"], fleet["live_runs"]) == (3, 3)
            assert fleet["live_without_summary"] == 3
            assert state["missed_total"] == {"sources": 0, "events": 0, "rest": None}
            page = (await http.get("/api/problems/missed")).json()
            assert (page["items"], page["total"], page["next_after"]) == ([], 0, None)

            async with http.stream("GET", "/api/stream", params={"since": "0"}) as stream:
                kinds: list[tuple[float, str]] = []
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        kinds.append((asyncio.get_running_loop().time(), line[7:]))
                    if len(kinds) == 3:
                        break
            assert kinds[0][1] == "snapshot"
            assert kinds[2][0] - kinds[0][0] <= 2 * (1.0 + 0.25)  # two ticks at most 1 s apart
    finally:
        gate.set()
        await asyncio.gather(*runs)
        await hub.stop()
