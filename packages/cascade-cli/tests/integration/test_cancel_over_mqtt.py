"""`cascade cancel` against a real broker and a real engine; a cancel is a command, not state."""

from __future__ import annotations

import asyncio
import threading
import uuid

import aiomqtt
import pytest
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import cancel_topic, decode_envelope
from cascade.interfaces.connector_kit import bounded
from cascade.runtime import Engine, RunCancelledError, RunStarted, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, Inbox


def cascade(broker: BrokerEndpoint, *args: str, timeout: str = "10") -> Result:
    """`cascade ARGS` in-process against ``broker``."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", timeout]
    return CliRunner().invoke(app, [*args, *address])


async def test_cancel_stops_a_real_run_and_says_what_it_stopped(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """The engine answers over the broker: the coroutine is cancelled, the thread left to
    finish, the dependants never start; the run ends Failed with cancelled: true, the
    canceller's name and reason in its error, and `cascade cancel` exits 0 saying so."""
    release, thread_done = threading.Event(), threading.Event()
    started_after: list[str] = []

    @task(name=f"{scope_name}_waits")
    async def waits() -> int:
        await asyncio.Event().wait()
        return 0

    @task(name=f"{scope_name}_blocks")
    def blocks() -> int:
        release.wait(20)
        thread_done.set()
        return 1

    @task(name=f"{scope_name}_after")
    async def after(value: int) -> int:
        started_after.append("after")
        return value

    source = f"engine-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as observer:
        events = Inbox()
        await observer.subscribe("cascade/telemetry/+/+/+/events", events)
        run = asyncio.create_task(engine.run([after(waits()), after(blocks())]))
        try:
            await recorder.until(lambda: len(recorder.names(TaskRunning)) == 2)
            (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
            run_id = started.run_id
            said = await asyncio.to_thread(
                cascade, mqtt_broker, "cancel", run_id, "--reason", "wrong input", "--as", "alice"
            )
            assert said.exit_code == 0, said.output
            assert said.stdout == (
                f"cancelled run {run_id} on {source}: 1 running tasks cancelled "
                f"({scope_name}_waits), 1 left to finish in their threads, results discarded "
                f"({scope_name}_blocks), 2 not started\n"
            )
            with pytest.raises(RunCancelledError, match="cancelled by alice: wrong input"):
                await asyncio.wait_for(run, 10)
            assert not thread_done.is_set()  # its thread runs on; the run did not wait for it
        finally:
            release.set()
        stopped = await events.until(
            lambda m: (
                m.payload.get("run_id") == run_id
                and m.payload["body"].get("event") == "ENGINE_STOPPED"
            )
        )
    body = decode_envelope(stopped.raw).body
    assert (body.status, body.cancelled) == ("Failed", True)  # type: ignore[union-attr]
    assert body.error == f"RunCancelledError: run {run_id} was cancelled by alice: wrong input"  # type: ignore[union-attr]
    assert started_after == []
    await asyncio.to_thread(thread_done.wait, 20)


def test_cancel_of_a_run_no_engine_runs_exits_1_and_leaves_nothing(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """Nobody answers: exit 1 after --timeout, one line; the request was not retained."""
    run_id = uuid.uuid4().hex
    result = cascade(mqtt_broker, "cancel", run_id, timeout="1")
    assert result.exit_code == 1
    assert f"no engine answered for run {run_id} within 1 s" in result.stderr

    async def retained() -> list[object]:
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as late:
            inbox = Inbox()
            await late.subscribe(cancel_topic(run_id), inbox)  # returns after retained ones
            return list(inbox.all)

    assert asyncio.run(retained()) == []


async def test_an_engine_away_when_a_cancel_is_sent_does_not_get_it_later(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """The connector's sessions are clean: once an engine's connection ends, the broker keeps
    nothing for its client id, so a cancel sent while it is away is never delivered to it.
    Seen from a plain client that takes the same client id back asking to resume a session
    (clean_session=False): whatever the broker had kept would arrive before a marker."""
    run_id = uuid.uuid4().hex
    client_id = f"away-{run_id[:8]}"
    topic = cancel_topic(run_id)
    engine_side = MqttConnector(
        mqtt_broker.host, mqtt_broker.port, presence=False, client_id=client_id
    )
    await engine_side.connect(require=True)
    await engine_side.subscribe(topic, Inbox())
    await engine_side.disconnect()  # away
    said = await asyncio.to_thread(cascade, mqtt_broker, "cancel", run_id, timeout="1")
    assert said.exit_code == 1  # nobody answered: the one subscriber was away
    received: list[bytes] = []
    resumed = aiomqtt.Client(
        mqtt_broker.host, mqtt_broker.port, identifier=client_id, clean_session=False
    )
    try:
        async with resumed, aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as other:
            await resumed.subscribe(topic, qos=1)
            await other.publish(topic, b'{"marker": 1}', qos=1)
            async with bounded(10):
                async for message in resumed.messages:
                    received.append(bytes(message.payload))
                    if b"marker" in received[-1]:
                        break
    finally:  # end the session this test's client asked the broker to keep
        async with aiomqtt.Client(
            mqtt_broker.host, mqtt_broker.port, identifier=client_id, clean_session=True
        ):
            pass
    assert received == [b'{"marker": 1}']
