"""A fleet behind a bridge: an engine on a site's broker, steered from the central one."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import status_topic
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import (
    NOT_THE_SHARED_BROKER,
    BrokerEndpoint,
    Inbox,
    MosquittoBridge,
    skip_on_family,
)

pytestmark = [
    skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER),
    skip_on_family("nats", NOT_THE_SHARED_BROKER),
]


def cascade(broker: BrokerEndpoint, *args: str) -> Result:
    """Run `cascade ARGS --host H --port P` in-process with the real MQTT connector."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "5"]
    result = CliRunner().invoke(app, [*args, *address])
    assert result.exit_code == 0, result.output
    return result


async def test_pause_on_the_centre_holds_an_engine_on_the_edge(
    mosquitto_bridge: MosquittoBridge, scope_name: str
) -> None:
    """`cascade pause global` on the centre holds an edge engine's tasks; resume releases them;
    the centre's `cascade status` shows the engine online."""
    edge, centre = mosquitto_bridge.edge, mosquitto_bridge.centre
    source = f"edge-{scope_name}"
    gate = asyncio.Event()

    @task
    async def bridged_first() -> int:
        await gate.wait()
        return 1

    @task
    async def bridged_next(x: int) -> int:
        return x + 1

    engine = Engine(MqttConnector(edge.host, edge.port, source_id=source), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(bridged_next(bridged_first())))
    try:
        await recorder.until(lambda: "bridged_first" in recorder.names(TaskRunning))
        status = json.loads((await asyncio.to_thread(cascade, centre, "status", "--json")).output)
        engines = {e["source"]: e for e in status["engines"]}
        assert engines[source]["status"] == "online"

        started = time.monotonic()
        await asyncio.to_thread(cascade, centre, "pause", "global")
        sent = time.monotonic()
        await eventually(lambda: engine.stats.accepted == 1)
        applied = time.monotonic()
        print(
            f"pause latency over the bridge: {applied - started:.3f} s from `cascade pause global`"
            f" on the centre (which took {sent - started:.3f} s) to the edge engine applying it"
            " (polled every 10 ms)"
        )

        gate.set()
        await recorder.until(lambda: "bridged_next" in recorder.names(TaskBlocked))
        assert "bridged_next" not in recorder.names(TaskRunning)
        await asyncio.to_thread(cascade, centre, "resume", "global")
        assert await asyncio.wait_for(run, 15) == 2
    finally:
        gate.set()
        if not run.done():
            run.cancel()
        await asyncio.gather(run, return_exceptions=True)


ENGINE_ON_THE_EDGE = """
import asyncio, sys
from cascade.connectors.mqtt import MqttConnector

async def main() -> None:
    connector = MqttConnector(sys.argv[1], int(sys.argv[2]), source_id=sys.argv[3])
    await connector.connect(require=True)
    print("connected", flush=True)
    await asyncio.Event().wait()  # until killed: no graceful offline, only the will

asyncio.run(main())
"""


def _engines(centre: BrokerEndpoint) -> dict[str, str]:
    status = json.loads(cascade(centre, "status", "--json", "--all").output)
    return {e["source"]: e["status"] for e in status["engines"]}


async def test_the_will_of_an_engine_killed_on_the_edge_reaches_the_centre(
    mosquitto_bridge: MosquittoBridge, scope_name: str
) -> None:
    """Presence crosses the bridge: online while it lives, offline (its will) once killed."""
    edge, centre = mosquitto_bridge.edge, mosquitto_bridge.centre
    source = f"edge-{scope_name}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENGINE_ON_THE_EDGE, edge.host, str(edge.port), source,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 15) == b"connected\n"
        online = await asyncio.to_thread(_engines, centre)
        assert online[source] == "online"
        statuses = Inbox()
        async with MqttConnector(centre.host, centre.port, presence=False) as watcher:
            await watcher.subscribe(status_topic(source), statuses)
            child.kill()  # the edge sends the will once it sees the socket closed
            await child.wait()
            await statuses.until(lambda m: m.payload.get("status") == "offline", timeout=15)
        assert (await asyncio.to_thread(_engines, centre))[source] == "offline"
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_a_pause_set_on_the_centre_holds_an_engine_started_later_on_the_edge(
    mosquitto_bridge: MosquittoBridge, scope_name: str
) -> None:
    """The retained pause crossed the bridge: the edge's new engine is held from its first task."""
    edge, centre = mosquitto_bridge.edge, mosquitto_bridge.centre
    scope = f"task:{scope_name}_*"

    @task(name=f"{scope_name}_held")
    async def held() -> int:
        return 1

    await asyncio.to_thread(cascade, centre, "pause", scope)
    engine = Engine(MqttConnector(edge.host, edge.port), heartbeat_interval=None)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(held()))
    try:
        await recorder.until(lambda: recorder.names(TaskBlocked) == [held.name])
        assert recorder.names(TaskRunning) == []
        await asyncio.to_thread(cascade, centre, "resume", scope)
        assert await asyncio.wait_for(run, 15) == 1
    finally:
        if not run.done():
            run.cancel()
        await asyncio.gather(run, return_exceptions=True)
