"""status, watch and forget against a real mosquitto: last seen, offline engines, lost broker."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.connector_kit import bounded
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import (
    Message,
    StatusMessage,
    constraints_filter,
    status_filter,
    status_topic,
    telemetry_filter,
)
from cascade.reader import ReaderModel, parse_timestamp
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker


def cascade(broker: MosquittoBroker, *args: str, obj: CliContext | None = None) -> Result:
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "5"]
    return CliRunner().invoke(app, [*args, *address], obj=obj)


def _retain_old_offline(broker: MosquittoBroker, source: str, ago: float) -> None:
    stamp = datetime.fromtimestamp(time.time() - ago, timezone.utc).isoformat()
    status = StatusMessage(status="offline", source=source, session=1, ts=stamp)

    async def publish() -> None:
        async with MqttConnector(broker.host, broker.port, presence=False) as tool:
            await tool.publish(status_topic(source), status, qos=1, retain=True)
            await tool.flush(5)

    asyncio.run(publish())


def _engine_that_came_and_went(broker: MosquittoBroker, source: str) -> None:
    async def come_and_go() -> None:
        async with MqttConnector(broker.host, broker.port, source_id=source):
            pass

    asyncio.run(come_and_go())


def test_status_last_seen_and_offline_engines(mosquitto_broker: MosquittoBroker) -> None:
    """Last seen is the engines' own time; long-offline ones are hidden until --all; forget."""
    broker = mosquitto_broker
    _engine_that_came_and_went(broker, "recent-engine")
    left = time.time()
    _retain_old_offline(broker, "old-engine", 3 * 3600)
    data = json.loads(cascade(broker, "status", "--json").output)
    assert [e["source"] for e in data["engines"]] == ["recent-engine"]
    assert data["hidden_engines"] == 1
    seen = datetime.fromisoformat(data["engines"][0]["last_seen"]).timestamp()
    assert seen <= left
    every = json.loads(cascade(broker, "status", "--json", "--all").output)
    old = next(e for e in every["engines"] if e["source"] == "old-engine")
    assert abs(datetime.fromisoformat(old["last_seen"]).timestamp() - (left - 3 * 3600)) < 60
    table = cascade(broker, "status", "--all").output
    assert "3h00m ago" in table

    result = cascade(broker, "forget", "--offline-older-than", "1h")
    assert (result.exit_code, result.output.strip()) == (0, "forgot 1: old-engine")
    result = cascade(broker, "forget", "recent-engine")
    assert (result.exit_code, result.output.strip()) == (0, "forgot 1: recent-engine")
    assert json.loads(cascade(broker, "status", "--json", "--all").stdout)["engines"] == []
    assert cascade(broker, "forget", "recent-engine").exit_code == 1


def test_forget_refuses_an_online_engine(mosquitto_broker: MosquittoBroker) -> None:
    """A live engine's status is kept without --force, and the broker unreachable exits 1."""
    broker = mosquitto_broker

    async def scenario() -> None:
        async with MqttConnector(broker.host, broker.port, source_id="live-engine"):
            result = await asyncio.to_thread(cascade, broker, "forget", "live-engine")
            assert result.exit_code == 1
            assert "is online" in result.output

    asyncio.run(scenario())
    broker.stop()
    assert cascade(broker, "forget", "--offline-older-than", "1h").exit_code == 1


@task
async def _step(i: int) -> int:
    await asyncio.sleep(0.01)
    return i


@task
async def _total(values: list[int]) -> int:
    return sum(values)


async def test_the_state_follows_a_real_engine(mosquitto_broker: MosquittoBroker) -> None:
    """A real run: its planned total from the start, its engine's last seen from its telemetry."""
    broker = mosquitto_broker
    state = ReaderModel()
    finished = asyncio.Event()
    births: list[float] = []
    telemetry: list[float] = []
    at_end: list[float | None] = []

    def apply(message: Message) -> None:
        state.apply(message)
        stamp = parse_timestamp(message.payload.get("ts"))
        if stamp is not None and "/telemetry/" in message.topic:
            telemetry.append(stamp)
        elif stamp is not None and message.payload.get("status") == "online":
            births.append(stamp)
        if not finished.is_set() and any(run.finished for run in state.runs.values()):
            at_end.append(state.engines["real-engine"].last_seen)  # before its shutdown status
            finished.set()

    async with MqttConnector(broker.host, broker.port, presence=False) as view:
        for topic_filter in (telemetry_filter(), status_filter(), constraints_filter()):
            await view.subscribe(topic_filter, apply)
        engine_connector = MqttConnector(broker.host, broker.port, source_id="real-engine")
        engine = Engine(engine_connector, heartbeat_interval=None)
        await engine.run(_total([_step(i) for i in range(6)]))
        async with bounded(10):
            await finished.wait()
    (run,) = state.runs.values()
    assert run.planned == 7
    assert (run.finished_tasks, run.total_tasks, run.progress) == (7, 7, 1.0)
    assert run.status == "Succeeded"
    engine_view = state.engines["real-engine"]
    assert engine_view.last_seen is not None
    assert max(telemetry) > max(births)
    assert at_end == [max(telemetry)]
    assert engine_view.last_seen >= max(telemetry)


class _Screen(io.StringIO):
    """A terminal's output; :meth:`wait_for` blocks until a text has been written."""

    def __init__(self) -> None:
        super().__init__()
        self._written = threading.Condition()

    def write(self, text: str) -> int:
        with self._written:
            count = super().write(text)
            self._written.notify_all()
            return count

    def wait_for(self, text: str, after: int = 0, timeout: float = 20.0) -> int:
        """The position just past ``text``, first written after position ``after``."""
        with self._written:
            found = self._written.wait_for(
                lambda: self.getvalue().find(text, after) >= 0, timeout=timeout
            )
            assert found, f"{text!r} not shown: {self.getvalue()[after:][-2000:]}"
            return self.getvalue().find(text, after) + len(text)


def test_watch_shows_the_broker_gone_and_back(mosquitto_broker: MosquittoBroker) -> None:
    """The live view says when the broker went away and that it reconnects, then connected again."""
    broker = mosquitto_broker
    screen = _Screen()
    console = Console(file=screen, force_terminal=True, width=160)
    outcome: list[Result] = []
    watch = threading.Thread(
        target=lambda: outcome.append(
            cascade(broker, "watch", "--count", "1", obj=CliContext(console=console))
        ),
        daemon=True,
    )
    watch.start()
    try:
        at = screen.wait_for(f"connected to {broker.host}:{broker.port}")
        broker.stop()
        at = screen.wait_for("DISCONNECTED from", after=at)
        screen.wait_for("reconnecting", after=at)
        broker.start()
        screen.wait_for(f"connected to {broker.host}:{broker.port}", after=at)
    finally:
        _engine_run(broker)  # one telemetry message ends `watch --count 1`
        watch.join(30)
    assert not watch.is_alive()
    assert outcome[0].exit_code == 0, outcome[0].output


def _engine_run(broker: MosquittoBroker) -> None:
    async def run() -> None:
        connector = MqttConnector(broker.host, broker.port, source_id="ender")
        await Engine(connector, heartbeat_interval=None).run(_step(1))

    asyncio.run(run())


def test_demo_says_what_it_does(mosquitto_broker: MosquittoBroker) -> None:
    """The demo's limits end with the run as it says: its last screen shows none in force."""
    result = cascade(mosquitto_broker, "demo", "--tasks", "8")
    assert result.exit_code == 0, result.output
    assert "rate-limited task:api_* to 2/s until the run ends" in result.output
    assert "paused task:transform for 3s" in result.output
    last_screen = result.output.rsplit("Constraints", 1)[1].split("What happened", 1)[0]
    assert "task:api_*" not in last_screen
    assert "times in " in last_screen
    next_steps = result.output.split("Try next", 1)[1]  # on the broker it ran on, which outlives it
    host = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    for command in ("watch", "dashboard", "record"):
        assert f"cascade {command} --host {host}" in next_steps


def test_readme_state_model_example_runs(mosquitto_broker: MosquittoBroker) -> None:
    """The README's ReaderModel example runs as written against a broker and lists an engine."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## The state model, for other views", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    address = f'"{mosquitto_broker.host}", {mosquitto_broker.port}'
    assert '"broker.example"' in code
    _engine_that_came_and_went(mosquitto_broker, "readme-engine")
    done = subprocess.run(
        [sys.executable, "-c", code.replace('"broker.example"', address)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\nreadme-engine offline 1" in done.stdout
