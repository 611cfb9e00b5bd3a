"""The `cascade` command against a real broker: control round trips, status, watch, demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint, Message, status_topic
from cascade.runtime import Engine, TaskBlocked, TaskRunning, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import (
    NOT_THE_SHARED_BROKER,
    QOS_ORDER_NOT_KEPT,
    RETAINED_EXACT_ONLY,
    BrokerEndpoint,
    MosquittoBroker,
    broker_family,
    free_port,
    sigint_default,
    skip_on_family,
    xfail_on_family,
)


def cascade(broker: BrokerEndpoint, *args: str) -> Result:
    """Run `cascade ARGS --host H --port P` in-process with the real MQTT connector."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "5"]
    return CliRunner().invoke(app, [*args, *address])


def _status(broker: BrokerEndpoint) -> dict[str, list[dict[str, object]]]:
    result = cascade(broker, "status", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return data


def _mine(status: dict[str, list[dict[str, object]]], scope: str) -> list[tuple[object, object]]:
    return sorted((c["type"], c["params"]) for c in status["constraints"] if c["scope"] == scope)


def test_pause_then_status_shows_it(mqtt_broker: BrokerEndpoint, scope_name: str) -> None:
    """A pause acknowledged by the broker is listed by `status` (read from retained messages;
    on RabbitMQ, through the constraints index)."""
    scope = f"task:{scope_name}"
    result = cascade(mqtt_broker, "pause", scope, "--ttl", "300")
    assert result.exit_code == 0, result.output
    assert _mine(_status(mqtt_broker), scope) == [("pause", {})]
    assert cascade(mqtt_broker, "resume", scope).exit_code == 0
    assert _mine(_status(mqtt_broker), scope) == []


def test_resume_type_clears_only_the_pause(mqtt_broker: BrokerEndpoint, scope_name: str) -> None:
    """`resume --type pause` leaves the scope's limit in place."""
    scope = f"task:{scope_name}"
    assert cascade(mqtt_broker, "pause", scope).exit_code == 0
    assert cascade(mqtt_broker, "limit", scope, "--concurrency", "3").exit_code == 0
    assert cascade(mqtt_broker, "resume", scope, "--type", "pause").exit_code == 0
    assert _mine(_status(mqtt_broker), scope) == [("concurrency", {"limit": 3})]
    assert cascade(mqtt_broker, "resume", scope).exit_code == 0


@xfail_on_family("rabbitmq", RETAINED_EXACT_ONLY)
def test_resume_clears_a_legacy_constraint_on_a_scope_with_slash(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """A pause an existing tool set on `task/<glob with />` is cleared by `resume` of its scope."""
    scope = f"task:{scope_name}/b"
    legacy = Constraint.pause(scope)

    async def publish_legacy() -> None:
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as tool:
            await tool.publish(f"cascade/constraints/task/{scope_name}/b", legacy, 1, retain=True)
            await tool.flush(5)

    asyncio.run(publish_legacy())
    assert _mine(_status(mqtt_broker), scope) == [("pause", {})]
    result = cascade(mqtt_broker, "resume", scope)
    assert result.exit_code == 0, result.output
    assert _mine(_status(mqtt_broker), scope) == []


def test_limit_with_both_flags_reaches_an_engine_started_later(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """Concurrency and rate limits on one scope both apply to an engine that starts afterwards."""
    scope = f"task:{scope_name}"
    result = cascade(mqtt_broker, "limit", scope, "--concurrency", "2", "--rate", "100/s")
    assert result.exit_code == 0, result.output
    seen: list[list[Constraint]] = []

    async def run() -> None:
        engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port), heartbeat_interval=None)

        @task(name=scope_name)
        async def probe() -> None:
            seen.append([c for c in engine.constraints if c.scope == scope])

        await engine.run(probe())

    asyncio.run(run())
    assert sorted((c.type, c.params) for c in seen[0]) == [
        ("concurrency", {"limit": 2}),
        ("rate_limit", {"rate": "100/s"}),
    ]
    assert cascade(mqtt_broker, "resume", scope).exit_code == 0


@skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER)
@skip_on_family("nats", NOT_THE_SHARED_BROKER)
def test_unreachable_broker_fails_fast_with_reason() -> None:
    """No broker: exit 1 within the timeout, with one line naming host, port and cause."""
    port = free_port()
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["pause", "--host", "127.0.0.1", "--port", str(port), "--timeout", "2"]
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert f"cannot connect to MQTT broker at 127.0.0.1:{port}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert elapsed < 6


@skip_on_family("rabbitmq", QOS_ORDER_NOT_KEPT)
def test_watch_json_sees_a_real_runs_events(mqtt_broker: BrokerEndpoint, scope_name: str) -> None:
    """`cascade watch --json` in its own process prints the events of a run as it happens."""
    source = f"engine-{scope_name}"
    watch_args = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--json"]

    async def scenario() -> list[dict[str, object]]:
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await connector.connect(require=True)  # its retained birth tells us watch has subscribed
        watch = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "watch", *watch_args, "--count", "4",
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert watch.stdout is not None
        lines: list[dict[str, object]] = []
        while not any(line["topic"] == f"cascade/status/{source}" for line in lines):
            lines.append(json.loads(await asyncio.wait_for(watch.stdout.readline(), 20)))

        @task(name=scope_name)
        async def step() -> int:
            return 1

        await Engine(connector, heartbeat_interval=None).run(step())
        out, _ = await asyncio.wait_for(watch.communicate(), 20)
        await connector.disconnect()
        assert watch.returncode == 0
        return [json.loads(line) for line in out.splitlines()]

    telemetry = [m for m in asyncio.run(scenario()) if "/telemetry/" in str(m["topic"])]
    bodies = [m["payload"]["body"] for m in telemetry]  # type: ignore[index]
    assert [b.get("event") or b["state"] for b in bodies] == [
        "ENGINE_STARTED", "RUNNING", "COMPLETED", "ENGINE_STOPPED"
    ]  # fmt: skip
    assert all(b.get("task_name", scope_name) == scope_name for b in bodies)


@skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER)
@skip_on_family("nats", NOT_THE_SHARED_BROKER)
def test_demo_runs_to_completion_on_the_embedded_broker() -> None:
    """`cascade demo` with no --host starts its own broker and finishes as planned."""
    started = time.monotonic()
    result = CliRunner().invoke(app, ["demo", "--tasks", "10"])
    assert result.exit_code == 0, result.output
    assert "\nrun finished; as planned, validate_checksums failed" in result.output
    assert "paused task:transform" in result.output
    assert "resumed task:transform" in result.output
    summary = result.output.split("What happened", 1)[1]
    assert "on its embedded broker: " in summary
    assert "validate_checksums failed on purpose (ValueError: checksum mismatch" in summary
    assert "flaky_lookup failed 2 times and succeeded on attempt 3" in summary
    assert "cascade dashboard --demo" in summary.split("Try next", 1)[1]
    assert time.monotonic() - started < 60


def test_tls_with_right_and_wrong_credentials(
    mqtt_tls_broker: MosquittoBroker,
) -> None:
    """--ca-file with the right user works; a wrong password exits 1 with the broker's refusal."""
    assert mqtt_tls_broker.certificates is not None
    ca_file = str(mqtt_tls_broker.certificates.ca_cert)
    port = str(mqtt_tls_broker.tls_port)
    address = ["--host", "localhost", "--port", port, "--ca-file", ca_file, "--username", "cascade"]
    ok = CliRunner().invoke(app, ["pause", "task:tls_probe", *address, "--password", "secret"])
    assert ok.exit_code == 0, ok.output
    refused = CliRunner().invoke(app, ["status", *address, "--password", "wrong", "--timeout", "3"])
    assert refused.exit_code == 1
    assert "cannot connect to MQTT broker" in refused.output
    assert "not authorised" in refused.output or "credentials" in refused.output


TASKS_DUMPED = b"cascade: end of the asyncio tasks"  # CASCADE_DEBUG_TASKS's last line


async def ended(process: asyncio.subprocess.Process, timeout: float) -> bytes:
    """The stderr of ``process`` once it has ended, within ``timeout`` seconds.

    If it has not, the AssertionError holds what it was awaiting: started with
    CASCADE_DEBUG_TASKS, it writes its asyncio tasks' stacks on SIGUSR1, and
    with PYTHONFAULTHANDLER its threads' on the SIGABRT that ends it.
    """
    assert process.stdout is not None
    assert process.stderr is not None
    err = bytearray()
    dumped = asyncio.Event()

    async def read_stderr(stream: asyncio.StreamReader) -> None:
        async for line in stream:
            err.extend(line)
            if line.rstrip() == TASKS_DUMPED:
                dumped.set()

    # both pipes read to their end: a child blocked writing to a full pipe never ends
    reading = asyncio.gather(read_stderr(process.stderr), process.stdout.read(), process.wait())
    try:
        await asyncio.wait_for(asyncio.shield(reading), timeout)
    except asyncio.TimeoutError:
        process.send_signal(signal.SIGUSR1)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(dumped.wait(), 10)
        process.send_signal(signal.SIGABRT)
        await reading
        raise AssertionError(
            f"pid {process.pid} did not end within {timeout:g} s: {err.decode()[-12000:]}"
        ) from None
    return bytes(err)


def test_watch_ends_cleanly_on_ctrl_c(mqtt_broker: BrokerEndpoint, scope_name: str) -> None:
    """SIGINT ends `cascade watch` with exit 0 and no traceback."""

    async def scenario() -> tuple[int | None, bytes]:
        source = f"engine-{scope_name}"
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await connector.connect(require=True)
        watch = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "watch", "--json",
            "--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_default,
            # a hang explained: SIGUSR1 writes the asyncio tasks' stacks, SIGABRT the threads'
            env={**os.environ, "PYTHONFAULTHANDLER": "1", "CASCADE_DEBUG_TASKS": "1"},
        )  # fmt: skip
        assert watch.stdout is not None
        while source not in (await asyncio.wait_for(watch.stdout.readline(), 20)).decode():
            pass  # retained statuses until ours: watch is subscribed and running
        watch.send_signal(signal.SIGINT)  # it ends in 0.03 s here; 30 s is a hang
        err = await ended(watch, 30)
        await connector.disconnect()
        return watch.returncode, err

    returncode, err = asyncio.run(scenario())
    assert returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_status_marks_two_engines_sharing_a_source_id(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """Two connectors with one source id, one ends: status shows the other online, conflicting."""
    source = f"shared-{scope_name}"
    first = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
    second = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
    observer = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    await observer.connect(require=True)
    answers: asyncio.Queue[Message] = asyncio.Queue()  # the survivor's, after the offline
    offline_seen = False  # the survivor may also answer the other's online, earlier

    def watch(message: Message) -> None:
        nonlocal offline_seen
        payload = message.payload
        if payload.get("status") == "offline" and payload.get("session") == second.session:
            offline_seen = True
        elif (
            offline_seen
            and message.payload.get("session") == first.session
            and message.payload.get("conflict_session") == second.session
        ):
            answers.put_nowait(message)

    try:
        await observer.subscribe(status_topic(source), watch)
        await first.connect(require=True)
        await second.connect(require=True)
        await second.disconnect()
        await asyncio.wait_for(answers.get(), 10)  # the survivor answered the offline
        status = await asyncio.to_thread(_status, mqtt_broker)
        engines = {e["source"]: e for e in status["engines"]}
        while engines[source]["status"] != "online":
            # another offline of the ended one came after (its will, when its connection
            # closed before its DISCONNECT): the survivor answers that too
            await asyncio.wait_for(answers.get(), 10)
            status = await asyncio.to_thread(_status, mqtt_broker)
            engines = {e["source"]: e for e in status["engines"]}
        assert engines[source]["status"] == "online"
        assert engines[source]["session"] == first.session
        assert engines[source]["conflict"] is True
        assert engines[source]["conflict_session"] == second.session
    finally:
        await first.disconnect()
        await second.disconnect()
        await observer.publish(status_topic(source), b"", qos=1, retain=True)
        await observer.flush(5)
        await observer.disconnect()


def test_status_says_what_a_broker_without_retained_wildcards_hides(
    mqtt_broker: BrokerEndpoint,
) -> None:
    """On RabbitMQ 3.x a warning on stderr names what status cannot show; on mosquitto none."""
    result = cascade(mqtt_broker, "status", "--json")
    assert result.exit_code == 0, result.output
    warned = "status lists the engines online that answer its roll call" in result.stderr
    assert warned is (broker_family() == "rabbitmq")


def test_a_pause_set_before_an_engine_starts_holds_it_until_resumed(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    """`cascade pause` then an engine: its task is held from the start, and runs on `resume`
    (on RabbitMQ 3.x through the constraints index the CLI keeps)."""
    scope = f"task:{scope_name}"
    assert cascade(mqtt_broker, "pause", scope).exit_code == 0

    async def scenario() -> list[str]:
        engine = Engine(MqttConnector(mqtt_broker.host, mqtt_broker.port), heartbeat_interval=None)
        recorder = EventRecorder()
        engine.events.subscribe(recorder)

        @task(name=scope_name)
        async def held() -> int:
            return 1

        run = asyncio.create_task(engine.run(held()))
        await recorder.until(lambda: scope_name in recorder.names(TaskBlocked))
        assert [c.type for c in engine.constraints if c.scope == scope] == ["pause"]
        resumed = await asyncio.to_thread(cascade, mqtt_broker, "resume", scope)
        assert resumed.exit_code == 0, resumed.output
        assert await asyncio.wait_for(run, 15) == 1
        return recorder.names(TaskRunning)

    assert asyncio.run(scenario()) == [scope_name]
