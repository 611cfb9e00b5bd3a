"""`cascade demo --host` on a broker of the user's (a private mosquitto): it warns before its
run joins Cascade state the broker already retains, and says nothing on a broker that holds
none."""

from __future__ import annotations

import asyncio
import os
import sys

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import StatusMessage, status_topic
from cascade.testkit import MosquittoBroker


async def _demo(broker: MosquittoBroker) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", "demo", "--tasks", "8",
        "--host", broker.host, "--port", str(broker.port),
        env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_the_demo_warns_before_joining_cascade_state_a_broker_holds(
    mosquitto_broker: MosquittoBroker,
) -> None:
    fresh = await _demo(mosquitto_broker)
    assert "already holds Cascade state" not in fresh
    async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port, presence=False) as c:
        said = StatusMessage(status="online", source="etl-7", session=1)
        await c.publish(status_topic("etl-7"), said, qos=1, retain=True)
        await c.flush(5)
    held = await _demo(mosquitto_broker)
    address = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    assert f"warning: {address} already holds Cascade state (" in held
    assert "engines' statuses" in held.split("already holds Cascade state", 1)[1].splitlines()[0]
