"""One run id everywhere, over a real broker: the short id a table shows cancels and explains a
live run, a prefix several runs have names them, and `why` of a run that has ended answers from
the default history."""

from __future__ import annotations

import asyncio
import time

import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.control.run_ids import LIVE_WAIT, SHORT_ID
from cascade.history import History, Received, Recorder, default_path
from cascade.interfaces import Envelope, LifecycleEvent, events_topic
from cascade.interfaces.summaries import summary_topic
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, Inbox


def cascade(broker: BrokerEndpoint, *args: str) -> Result:
    """`cascade ARGS` in-process against ``broker``, listening 2 s for the runs a prefix names."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "2"]
    return CliRunner().invoke(app, [*args, *address])


def _recorded_elsewhere(run_id: str) -> None:
    """A run in the default history that no engine on this broker runs."""
    start = LifecycleEvent(event="ENGINE_STARTED")
    envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="gone", body=start)
    with History(default_path(), mode="write") as history:
        history.store([Received(events_topic("o", "p", run_id), envelope, 1.0)])


async def test_the_short_id_cancels_and_explains_a_live_run(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """`why` and `cancel` take the 12 digits tables show; a prefix a recorded run shares is
    refused naming both runs, and nothing is cancelled."""

    @task(name=f"{scope_name}_waits")
    async def waits() -> None:
        await asyncio.Event().wait()

    source = f"engine-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=0.2,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([waits(), waits()]))
    try:
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        twin = run_id[:6] + ("0" if run_id[6] != "0" else "1") + "f" * 25
        await asyncio.to_thread(_recorded_elsewhere, twin)

        why = await asyncio.to_thread(cascade, mqtt_broker, "why", run_id[:SHORT_ID])
        assert why.exit_code == 0, why.output
        assert why.stdout.startswith(f"run {run_id[:SHORT_ID]} ({source}): Running")

        several = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id[:6])
        assert several.exit_code == 2, several.output
        assert f"several runs' ids start with '{run_id[:6]}'" in several.output
        assert run_id[:SHORT_ID] in several.output
        assert twin[:SHORT_ID] in several.output
        assert not run.done()

        said = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id[:SHORT_ID])
        assert said.exit_code == 0, said.output
        assert said.stdout.startswith(f"cancelled run {run_id} on {source}: 2 running tasks")
        with pytest.raises(RunCancelledError):
            await asyncio.wait_for(run, 10)
    finally:
        if not run.done():
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run


async def test_why_of_an_ended_run_answers_from_the_default_history(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """The run was recorded into the default history and has ended: `why` hears nothing of it
    live, says so, and answers from that history."""

    @task(name=f"{scope_name}_quick")
    async def quick() -> int:
        return 1

    history = History(default_path(), mode="write")
    try:
        reader = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
        async with reader, Recorder(reader, history) as recording:
            events = Inbox()
            await reader.subscribe("cascade/telemetry/+/+/+/events", events)
            engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port))
            recorder = EventRecorder()
            engine.events.subscribe(recorder)
            assert await engine.run([quick()]) == [1]
            (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
            run_id = started.run_id
            await events.until(  # the recorder, on the same connection, has it too
                lambda m: (
                    m.payload.get("run_id") == run_id
                    and m.payload["body"].get("event") == "ENGINE_STOPPED"
                )
            )
            await recording.flush(10)
    finally:
        history.close()
    answer = await asyncio.to_thread(cascade, mqtt_broker, "why", run_id)
    assert answer.exit_code == 0, answer.output
    assert answer.stderr == (
        f"cascade: nothing heard of run {run_id[:SHORT_ID]} within 2 s: answering from the "
        f"history at {default_path()}\n"
    )
    assert answer.stdout.startswith(f"run {run_id[:SHORT_ID]} (")
    assert "Succeeded" in answer.stdout.splitlines()[0]


async def test_the_short_id_of_a_live_run_costs_no_more_than_the_whole_id(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """The engine's retained summary lists its live run: `cancel` of the 8 digits a person
    copies answers without listening for runs (no stderr line, well within the 5 s such a
    window costs), though --timeout allows 20 s."""

    @task(name=f"{scope_name}_waits")
    async def waits() -> None:
        await asyncio.Event().wait()

    engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=scope_name))
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([waits()]))
    try:
        await recorder.until(lambda: len(recorder.names(TaskRunning)) == 1)
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        run_id = started.run_id
        listed = Inbox()
        reader = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
        async with reader:  # the summary that lists the run is retained before the command
            await reader.subscribe(summary_topic(scope_name), listed)
            await listed.until(
                lambda m: any(r["run_id"] == run_id for r in m.payload.get("listed", []))
            )
        address = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port)]
        began = time.monotonic()
        said = await asyncio.to_thread(
            CliRunner().invoke, app, ["cancel", run_id[:8], *address, "--timeout", "20"]
        )
        took = time.monotonic() - began
        assert said.exit_code == 0, said.output
        assert said.stderr == ""
        assert said.stdout.startswith(f"cancelled run {run_id} on {scope_name}")
        assert took < LIVE_WAIT, took
        with pytest.raises(RunCancelledError):
            await asyncio.wait_for(run, 10)
    finally:
        if not run.done():
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
