"""A cached task across two engine processes sharing one results store, as a plain MQTT
subscriber sees it: the second process's task ends COMPLETED cached from the first's run."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt

from cascade.testkit import BrokerEndpoint

# one engine process: report(extract(5).with_cache()), extract counting its calls in a file
_ENGINE = """
import asyncio, sys
from pathlib import Path

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, RunStarted, task

host, port, prefix, store, source = sys.argv[1:6]


@task
def extract(n: int) -> list[int]:
    with Path(store).parent.joinpath("calls").open("a") as calls:
        calls.write("extract\\n")
    return list(range(n))


@task
def report(rows: list[int]) -> int:
    return sum(rows)


async def main() -> None:
    connector = MqttConnector(host, int(port), topic_prefix=prefix, source_id=source)
    engine = Engine(connector, heartbeat_interval=None, results=store)
    engine.events.subscribe(
        lambda e: print(e.run_id, flush=True) if isinstance(e, RunStarted) else None
    )
    assert await engine.run(report(extract(5).with_cache())) == 10


asyncio.run(main())
"""


async def _engine_process(
    broker: BrokerEndpoint, prefix: str, store: Path, source: str, script: Path
) -> str:
    """Run one engine process to its end; the id of its run."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), broker.host, str(broker.port), prefix, str(store), source,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().split()[0]


async def test_a_cached_result_crosses_processes_and_the_wire_says_so(
    mqtt_broker: BrokerEndpoint, prefix: str, plain_client: aiomqtt.Client, tmp_path: Path
) -> None:
    script = tmp_path / "engine.py"
    script.write_text(_ENGINE, encoding="utf-8")
    store = tmp_path / "kept"
    await plain_client.subscribe(f"{prefix}/telemetry/+/+/+/events", qos=1)
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in plain_client.messages:
            assert isinstance(message.payload, bytes)
            received.append(json.loads(message.payload))
            arrived.set()

    def ended(run_id: str) -> bool:
        """The run stopped, and its extract and report completed."""
        seen = {(e["run_id"], e["body"].get("task_name") or e["body"].get("event"),
                 e["body"].get("state")) for e in received}  # fmt: skip
        return {(run_id, "ENGINE_STOPPED", None), (run_id, "extract", "COMPLETED"),
                (run_id, "report", "COMPLETED")} <= seen  # fmt: skip

    async def until_ended(runs: list[str]) -> None:
        while not all(ended(run_id) for run_id in runs):
            arrived.clear()
            await arrived.wait()

    reading = asyncio.create_task(read())
    try:
        runs = [
            await _engine_process(mqtt_broker, prefix, store, source, script)
            for source in ("cache-a", "cache-b")
        ]
        await asyncio.wait_for(until_ended(runs), 15)
    finally:
        reading.cancel()
    first, second = runs
    assert (tmp_path / "calls").read_text(encoding="utf-8") == "extract\n"  # once, in the first

    def states(run_id: str, name: str) -> list[dict[str, Any]]:
        return [
            e["body"]
            for e in received
            if e["run_id"] == run_id and e["body"].get("task_name") == name
        ]

    [hit] = states(second, "extract")  # no RUNNING: it did not run
    assert (hit["state"], hit["cached"], hit["reused_from"]) == ("COMPLETED", True, first)
    ran = states(first, "extract")
    assert sorted(b["state"] for b in ran) == ["COMPLETED", "RUNNING"]
    assert all("cached" not in b for b in ran)
