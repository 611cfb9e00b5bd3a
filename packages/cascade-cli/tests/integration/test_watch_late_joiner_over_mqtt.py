"""`cascade watch` joining a run late, on a real broker (mosquitto, or RabbitMQ with
``CASCADE_TEST_BROKER=rabbitmq``): a run started before the view, busy in a long task and so
sending nothing while the view looks, is shown at once from what its engine's retained
summary and its snapshot answer say (the run, its tasks by state), not "waiting for
telemetry"; the events after it are shown as they come."""

from __future__ import annotations

import asyncio
import io
import threading

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.interfaces.summaries import summary_topic
from cascade.runtime import Engine, RunStarted, TaskCompleted, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


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
            assert found, f"{text!r} not shown: {self.getvalue()[after:][-3000:]}"
            return self.getvalue().find(text, after) + len(text)


async def test_watch_shows_a_run_live_before_it_from_the_summary_and_snapshot(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    release = threading.Event()

    @task(name=f"{scope_name}_first")
    def first() -> int:
        return 1

    @task(name=f"{scope_name}_slow")
    def slow(value: int) -> int:
        release.wait(30)
        return value

    @task(name=f"{scope_name}_last")
    def last(value: int) -> int:
        return value

    source = f"late-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,  # nothing of the run is sent while the view looks
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    listed = asyncio.Event()

    def summary(message: Message) -> None:
        if any(r.get("status") == "Running" for r in message.payload.get("listed", [])):
            listed.set()

    running = asyncio.create_task(engine.run(last(slow(first())), name=scope_name))
    try:
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as tool:
            await tool.subscribe(summary_topic(source), summary)
            await asyncio.wait_for(listed.wait(), 15)
        await recorder.until(lambda: bool(recorder.names(TaskCompleted)))
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]

        screen = _Screen()
        console = Console(file=screen, force_terminal=True, color_system=None, width=200, height=60)
        address = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port)]
        watching = asyncio.create_task(
            asyncio.to_thread(
                CliRunner().invoke,
                app,
                ["watch", "--duration", "4", *address],
                obj=CliContext(console=console),
            )
        )
        # shown from the answer its engine's summary made the view ask for: the run, its
        # name, its tasks by state
        at = await asyncio.to_thread(screen.wait_for, "running 1 completed 1", timeout=3)
        shown = screen.getvalue()
        assert "waiting for telemetry" not in shown[shown.rfind("Runs", 0, at) :]
        for said in (started.run_id[:12], scope_name, "1/3"):
            assert said in shown[shown.rfind("Runs", 0, at) :], shown[-3000:]
        release.set()  # then its events, as they come
        await asyncio.to_thread(screen.wait_for, "completed 3", after=at)
        result: Result = await watching
        assert result.exit_code == 0, result.output
    finally:
        release.set()
        await asyncio.wait_for(running, 30)
