"""`cascade logs RUN -f` in its own process on a real broker: it prints the lines an engine
publishes as they come, and ends by itself after the run's ENGINE_STOPPED.

(`cascade logs --db` against a real history waits for the history's ``log_lines``: the
integrator adds its test once both are merged.)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import (
    DroppedLines,
    Envelope,
    LifecycleEvent,
    LogBatch,
    LogLine,
    events_topic,
    logs_topic,
)
from cascade.testkit import BrokerEndpoint

TS = "2026-11-18T10:00:00.250000+00:00"


def test_follow_prints_live_lines_and_stops_after_the_run(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex
    source = f"engine-{run_id[:8]}"

    def batch(seq: int, *lines: LogLine, **fields: object) -> LogBatch:
        return LogBatch(run_id=run_id, org_id="o", project_id="p", source=source, seq=seq,
                        ts=TS, lines=list(lines), **fields)  # type: ignore[arg-type]  # fmt: skip

    def line(n: int, message: str) -> LogLine:
        return LogLine(ts=TS, task_id="load-1", task_name="load", message=message, n=n,
                       logger="etl")  # fmt: skip

    async def scenario() -> tuple[int | None, list[str], str]:
        engine = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await engine.connect(require=True)
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id, "-f",
            "--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        assert follow.stdout is not None
        topic = logs_topic("o", "p", run_id, source=source)
        seq, first = 0, b""
        # a line a batch until one is printed: then `cascade logs` is subscribed
        while not first:
            seq += 1
            await engine.publish(topic, batch(seq, line(seq, "waiting")), qos=0)
            try:
                first = await asyncio.wait_for(follow.stdout.readline(), 0.5)
            except asyncio.TimeoutError:
                continue
        dropped = DroppedLines(task_id="load-1", task_name="load", lines=312)
        await engine.publish(
            topic, batch(seq + 1, line(seq + 313, "hello\nworld"), dropped=[dropped]), qos=0
        )
        stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
        envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source=source,
                            body=stopped, seq=1)  # fmt: skip
        await engine.publish(events_topic("o", "p", run_id, source=source), envelope, qos=1)
        out, err = await asyncio.wait_for(follow.communicate(), 20)
        await engine.disconnect()
        lines = [first.decode().rstrip("\n"), *out.decode().splitlines()]
        return follow.returncode, lines, err.decode()

    returncode, lines, err = asyncio.run(scenario())
    assert returncode == 0, err
    assert lines[0].endswith("INFO     load etl: waiting")
    assert lines[-3:] == [
        "312 lines of load dropped (rate)",
        lines[-2][:13] + "INFO     load etl: hello",
        "    world",
    ]
    assert "Traceback" not in err
