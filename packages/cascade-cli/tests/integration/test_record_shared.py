"""`cascade record --share GROUP`: through a shared subscription where the broker has them
(mosquitto, MQTT 5 or 3.1.1); where it has none (the embedded amqtt broker), one line says so
and the recorder records every message through a plain subscription instead."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task
from cascade.testkit import BrokerEndpoint, MosquittoBroker, ThreadedEmbeddedBroker

CASCADE = [sys.executable, "-m", "cascade.cli"]


@task
async def step(n: int) -> int:
    return n


async def _a_run(broker: BrokerEndpoint) -> None:
    engine = Engine(
        MqttConnector(broker.host, broker.port, source_id="shared-it"),
        project_id="shared-it",
        heartbeat_interval=None,
    )
    await engine.run(step(1))


def _record(broker: BrokerEndpoint, db: Path, *args: str) -> tuple[str, str, str]:
    """`cascade record --share g ARGS` while a run happens: its first line, stderr, summary."""
    address = f"{broker.host}:{broker.port}"
    recorder = subprocess.Popen(
        [*CASCADE, "record", "--host", address, "--db", str(db), "--share", "g", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert recorder.stdout is not None
        first = recorder.stdout.readline()
        asyncio.run(_a_run(broker))
        for _ in range(100):  # the recorder writes within moments: wait for the run's end
            listed = subprocess.run(
                [*CASCADE, "runs", "--db", str(db), "--status", "succeeded", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            if json.loads(listed.stdout):
                break
            time.sleep(0.1)  # polling another process's database
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate()
    assert recorder.returncode == 0, err
    return first, err, out.strip().splitlines()[-1]


@pytest.fixture
def amqtt_broker() -> Iterator[ThreadedEmbeddedBroker]:
    """The embedded amqtt broker: MQTT 3.1.1, no shared subscriptions."""
    broker = ThreadedEmbeddedBroker()
    broker.start()
    yield broker
    broker.stop()


def test_a_broker_without_shared_subscriptions_is_said_and_recorded_plainly(
    amqtt_broker: ThreadedEmbeddedBroker, tmp_path: Path
) -> None:
    """One line on stderr; the run is recorded all the same, counting gaps as a lone recorder."""
    first, err, summary = _record(amqtt_broker, tmp_path / "h.sqlite3")
    assert err.splitlines() == [
        "cascade: warning: this broker does not deliver to shared subscriptions ($share/g/...): "
        "this recorder records every message, as each of the group does (the history stores "
        "each event once)"
    ]
    assert "sharing" not in first
    assert " stored, " in summary


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_mosquitto_delivers_to_the_group(
    mosquitto_broker: MosquittoBroker, tmp_path: Path, protocol: str
) -> None:
    """mosquitto has shared subscriptions over MQTT 5 and 3.1.1 alike: nothing to say."""
    first, err, _ = _record(mosquitto_broker, tmp_path / "h.sqlite3", "--protocol", protocol)
    assert ", sharing the telemetry with group g); Ctrl-C ends it" in first
    assert "shared subscriptions" not in err
