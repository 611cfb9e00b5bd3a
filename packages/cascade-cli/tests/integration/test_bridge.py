"""A fleet behind a bridge: an engine on a site's broker, steered from the central one."""

from __future__ import annotations

import asyncio
import json
import time

from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import (
    NOT_THE_SHARED_BROKER,
    BrokerEndpoint,
    MosquittoBridge,
    skip_on_family,
)
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder, eventually

pytestmark = skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER)


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
