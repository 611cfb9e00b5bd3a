"""`cascade logs RUN -f` in its own process on a real broker: it prints the lines an engine
publishes as they come, and ends by itself after the run's ENGINE_STOPPED.

And a real engine's lines through `cascade record` to `cascade logs --db` and `cascade run`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Envelope, LifecycleEvent, events_topic
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, logs_topic
from cascade.runtime import Engine, LogForwarding, task
from cascade.testkit import BrokerEndpoint, MosquittoBroker

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
        events = events_topic("o", "p", run_id, source=source)
        start = Envelope(run_id=run_id, org_id="o", project_id="p", source=source,
                         body=LifecycleEvent(event="ENGINE_STARTED"), seq=1)  # fmt: skip
        topic = logs_topic("o", "p", run_id, source=source)
        seq, first = 0, b""
        # a line a batch until one is printed: then `cascade logs` is subscribed
        while not first:
            seq += 1
            if seq % 5 == 1:  # its start says whose the run is (a late listener's too)
                await engine.publish(events, start, qos=1)
            await engine.publish(topic, batch(seq, line(seq, "waiting")), qos=0)
            try:
                first = await asyncio.wait_for(follow.stdout.readline(), 0.5)
            except asyncio.TimeoutError:
                continue
            if b"of load not shown" in first:  # those sent before it listened
                first = await asyncio.wait_for(follow.stdout.readline(), 5)
        dropped = DroppedLines(task_id="load-1", task_name="load", lines=312)
        await engine.publish(
            topic, batch(seq + 1, line(seq + 313, "hello\nworld"), dropped=[dropped]), qos=0
        )
        stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded")
        envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source=source,
                            body=stopped, seq=2)  # fmt: skip
        await engine.publish(events, envelope, qos=1)
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


def test_a_real_engines_lines_are_recorded_and_read_back(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """An engine forwards what its task logs; `cascade record` keeps it; `cascade logs RUN
    --db` prints it and `cascade run RUN --json` counts it, the dropped lines included."""
    db = tmp_path / "history.sqlite3"
    address = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    cli = [sys.executable, "-m", "cascade.cli"]
    recorder = subprocess.Popen(
        [*cli, "record", "--host", address, "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    app = logging.getLogger("it.logs")

    @task(name="chatty")
    def chatty() -> None:
        for i in range(30):
            app.warning("loaded batch %d", i)

    async def run() -> str:
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port)
        engine = Engine(connector, logs=LogForwarding(max_lines_per_task=20))
        started: list[str] = []
        engine.events.subscribe(lambda e: started.append(e.run_id))
        await engine.run(chatty())
        return started[0]

    try:
        assert recorder.stdout is not None
        assert recorder.stdout.readline().startswith("recording ")  # subscribed
        run_id = asyncio.run(run())
        shown = ""
        for _ in range(100):  # the recorder writes within moments
            read = subprocess.run([*cli, "logs", run_id[:12], "--db", str(db), "--json"],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            shown = read.stdout
            if shown.count("\n") >= 20:
                break
            time.sleep(0.1)  # polls the recorder's database; nothing to await across processes
        overview = [*cli, "run", run_id, "--db", str(db), "--json"]
        counted = subprocess.run(overview, capture_output=True, text=True, timeout=60, check=True)
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.communicate(timeout=30)
    lines = [json.loads(line) for line in shown.splitlines()]
    assert [line["message"] for line in lines] == [f"loaded batch {i}" for i in range(20)]
    assert {(line["task_name"], line["level"], line["run_id"]) for line in lines} == {
        ("chatty", "WARNING", run_id)
    }
    [recorded] = json.loads(counted.stdout)["tasks"]
    assert (recorded["log_lines"], recorded["log_dropped"]) == (20, 10)


def test_follow_from_the_short_id_of_a_live_run_to_its_end(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """`cascade logs SHORT -f` with the 12 digits every table shows, no history: the prefix
    is found among the live runs, the run's lines are printed, and it ends (exit 0) with the
    run."""
    app = logging.getLogger("it.logs.follow")
    go = threading.Event()

    @task(name="talker")
    def talker() -> None:
        while not go.is_set():  # until `cascade logs -f` printed a line: then it listens
            app.warning("waiting")
            go.wait(0.2)
        app.warning("the last line")

    async def scenario() -> tuple[int | None, str, str, str]:
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port)
        # heartbeats often enough to be heard in the lookup's window (--timeout 3)
        engine = Engine(connector, heartbeat_interval=0.5, logs=LogForwarding())
        started: asyncio.Queue[str] = asyncio.Queue()
        engine.events.subscribe(lambda e: started.put_nowait(e.run_id))
        running = asyncio.create_task(engine.run(talker()))
        run_id = await asyncio.wait_for(started.get(), 30)
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id[:12], "-f", "--timeout", "3",
            "--host", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        assert follow.stdout is not None
        first = await asyncio.wait_for(follow.stdout.readline(), 60)
        go.set()
        await asyncio.wait_for(running, 60)
        out, err = await asyncio.wait_for(follow.communicate(), 60)
        return follow.returncode, run_id, first.decode() + out.decode(), err.decode()

    returncode, _run_id, out, err = asyncio.run(scenario())
    assert returncode == 0, err
    lines = [line for line in out.splitlines() if "not shown" not in line]  # while looked up
    assert lines[0].endswith("WARNING  talker it.logs.follow: waiting")
    assert lines[-1].endswith("WARNING  talker it.logs.follow: the last line")
    assert "Traceback" not in err


def test_a_line_logged_as_soon_as_it_says_it_follows_is_shown(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """`cascade logs RUN -f` says it is following only once the broker has its subscriptions:
    a line a task logs the moment that line appears is printed (a command that said so first
    lost what a task logged in its first second)."""
    app = logging.getLogger("it.logs.following")
    go = threading.Event()

    @task(name="prompt")
    def prompt() -> None:
        go.wait(60)  # until `cascade logs -f` says it follows: then at once
        app.warning("logged as it said it follows")

    async def scenario() -> tuple[int | None, str, str, str, str]:
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port)
        engine = Engine(connector, heartbeat_interval=0.5, logs=LogForwarding())
        started: asyncio.Queue[str] = asyncio.Queue()
        engine.events.subscribe(lambda e: started.put_nowait(e.run_id))
        running = asyncio.create_task(engine.run(prompt()))
        run_id = await asyncio.wait_for(started.get(), 30)
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id, "-f",
            "--host", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        assert follow.stderr is not None
        said = await asyncio.wait_for(follow.stderr.readline(), 60)
        go.set()
        await asyncio.wait_for(running, 60)
        out, err = await asyncio.wait_for(follow.communicate(), 60)
        return follow.returncode, run_id, said.decode(), out.decode(), err.decode()

    returncode, run_id, said, out, err = asyncio.run(scenario())
    assert returncode == 0, said + err
    address = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    assert said == (
        f"cascade: following the log lines of run {run_id[:12]} on {address} (Ctrl-C ends)\n"
    )
    assert out.splitlines()[-1].endswith("WARNING  prompt it.logs.following: logged as it said "
                                          "it follows"), out + err  # fmt: skip
    assert "never reached this command" not in err, err


def test_follow_refuses_lines_another_source_forges_under_a_real_run(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A real engine's live run; mallory floods log batches under its run id (both layouts)
    from before `cascade logs -f` listens, so that they come before the engine's: none of
    mallory's lines is printed, the engine's are, and stderr says what was refused (by the
    source claimed and why, as `cascade watch` says it)."""
    app = logging.getLogger("it.logs.forged")
    go = threading.Event()

    @task(name="talker")
    def talker() -> None:
        while not go.is_set():  # until `cascade logs -f` printed a line: then it listens
            app.warning("waiting")
            go.wait(0.2)
        app.warning("the last line")

    async def flood(run_id: str, org: str, project: str, stop: asyncio.Event) -> int:
        forger = MqttConnector(mosquitto_broker.host, mosquitto_broker.port, source_id="mallory")
        await forger.connect(require=True)
        seq = 0
        while not stop.is_set():
            seq += 1
            line = LogLine(ts=datetime.now(timezone.utc).isoformat(), task_id="talker-1",
                           task_name="talker", message="FORGED", n=seq)  # fmt: skip
            forged = LogBatch(run_id=run_id, org_id=org, project_id=project, source="mallory",
                              seq=seq, ts=line.ts, lines=[line])  # fmt: skip
            layout = "mallory" if seq % 2 else None
            await forger.publish(logs_topic(org, project, run_id, source=layout), forged, qos=1)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.005)
        await forger.disconnect()  # its batches are at the broker, before the run's end
        return seq

    async def scenario() -> tuple[int | None, str, str]:
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port)
        engine = Engine(connector, heartbeat_interval=0.5, logs=LogForwarding())
        started: asyncio.Queue[str] = asyncio.Queue()
        engine.events.subscribe(lambda e: started.put_nowait(e.run_id))
        running = asyncio.create_task(engine.run(talker()))
        run_id = await asyncio.wait_for(started.get(), 30)
        stop = asyncio.Event()
        forging = asyncio.create_task(flood(run_id, engine.org_id, engine.project_id, stop))
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id, "-f",
            "--host", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        assert follow.stdout is not None
        first = await asyncio.wait_for(follow.stdout.readline(), 30)  # it listens
        stop.set()
        await forging
        go.set()
        await asyncio.wait_for(running, 60)
        out, err = await asyncio.wait_for(follow.communicate(), 60)
        return follow.returncode, first.decode() + out.decode(), err.decode()

    returncode, out, err = asyncio.run(scenario())
    assert returncode == 0, err
    assert "FORGED" not in out
    lines = [line for line in out.splitlines() if "not shown" not in line]  # before it listened
    assert lines[0].endswith("WARNING  talker it.logs.forged: waiting")
    assert lines[-1].endswith("WARNING  talker it.logs.forged: the last line")
    refused = re.search(
        r"cascade: refused ([\d,]+) batch(es)? of log lines claiming mallory: \1 foreign source",
        err,
    )
    assert refused is not None, err
    assert "Traceback" not in err


def test_follow_says_the_lines_it_never_received_by_the_engines_count(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """`extract`'s only line was sent before `cascade logs -f` listened, with no history: at
    the run's end, whose ENGINE_STOPPED counts the run's lines, it says on stderr that one of
    them never reached it, and why (exit 0)."""
    run_id = uuid.uuid4().hex
    source = f"engine-{run_id[:8]}"

    def batch(seq: int, line: LogLine) -> LogBatch:
        return LogBatch(run_id=run_id, org_id="o", project_id="p", source=source, seq=seq,
                        ts=TS, lines=[line])  # fmt: skip

    def line(task: str, n: int) -> LogLine:
        return LogLine(ts=TS, task_id=f"{task}-1", task_name=task, message="row", n=n)

    async def scenario() -> tuple[int | None, str]:
        engine = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await engine.connect(require=True)
        events = events_topic("o", "p", run_id, source=source)
        topic = logs_topic("o", "p", run_id, source=source)
        start = Envelope(run_id=run_id, org_id="o", project_id="p", source=source,
                         body=LifecycleEvent(event="ENGINE_STARTED"), seq=1)  # fmt: skip
        await engine.publish(events, start, qos=1)
        await engine.publish(topic, batch(1, line("extract", 1)), qos=1)
        await engine.flush(5)  # at the broker, and given to nobody: nothing listens yet
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id, "-f",
            "--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        assert follow.stdout is not None
        seq, printed = 1, b""
        while b"load" not in printed:  # a line a batch until one is printed: it listens
            seq += 1
            if seq % 5 == 0:
                await engine.publish(events, start, qos=1)
            await engine.publish(topic, batch(seq, line("load", seq - 1)), qos=0)
            with contextlib.suppress(asyncio.TimeoutError):
                printed = await asyncio.wait_for(follow.stdout.readline(), 0.5)
        stopped = LifecycleEvent(event="ENGINE_STOPPED", status="Succeeded", log_lines=seq)
        end = Envelope(run_id=run_id, org_id="o", project_id="p", source=source, body=stopped,
                       seq=2)  # fmt: skip
        await engine.publish(events, end, qos=1)
        _, err = await asyncio.wait_for(follow.communicate(), 20)
        await engine.disconnect()
        return follow.returncode, err.decode()

    returncode, err = asyncio.run(scenario())
    assert returncode == 0, err
    said = err.splitlines()[-1]
    assert said.startswith("cascade: 1 of the run's ")
    assert (
        "log lines (its engine's count) never reached this command: logged before it listened, "
        "with no history that has them; `cascade record` keeps"
    ) in said


def test_follow_refuses_an_end_claimed_on_another_orgs_topic(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """A login of globex publishes the run's ENGINE_STOPPED as its engine's, on globex's
    topics (its own login's, and the engine's name: all a broker ACL lets another org write
    is its own org's): `cascade logs -f` follows on, prints the lines sent after, ends at the
    engine's own end (whose count of the run's lines it takes, not the forger's), and says
    on stderr that it refused both, and why."""
    run_id = uuid.uuid4().hex
    source = f"engine-{run_id[:8]}"

    def batch(seq: int, message: str) -> LogBatch:
        line = LogLine(ts=TS, task_id="load-1", task_name="load", message=message, n=seq)
        return LogBatch(run_id=run_id, org_id="o", project_id="p", source=source, seq=seq,
                        ts=TS, lines=[line])  # fmt: skip

    def stopped(seq: int, status: Literal["Succeeded", "Failed"], lines: int) -> Envelope:
        end = LifecycleEvent(event="ENGINE_STOPPED", status=status, log_lines=lines)
        return Envelope(run_id=run_id, org_id="o", project_id="p", source=source, seq=seq,
                        body=end)  # fmt: skip

    start = Envelope(run_id=run_id, org_id="o", project_id="p", source=source, ts=TS,
                     body=LifecycleEvent(event="ENGINE_STARTED"), seq=1)  # fmt: skip

    async def until_printed(
        engine: MqttConnector, follow: asyncio.subprocess.Process, seq: int, message: str
    ) -> int:
        """A line a batch until one saying ``message`` is printed; the last ``seq`` sent."""
        assert follow.stdout is not None
        events = events_topic("o", "p", run_id, source=source)
        printed = b""
        while message.encode() not in printed:
            seq += 1
            if seq % 5 == 1:  # its start says whose the run is (a late listener's too)
                await engine.publish(events, start, qos=1)
            await engine.publish(logs_topic("o", "p", run_id, source=source),
                                 batch(seq, message), qos=1)  # fmt: skip
            with contextlib.suppress(asyncio.TimeoutError):
                printed = await asyncio.wait_for(follow.stdout.readline(), 0.5)
            assert not follow.stdout.at_eof(), "it ended before the run did"
        return seq

    async def scenario() -> tuple[int | None, str, str]:
        engine = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await engine.connect(require=True)
        forger = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id="globex-1",
                               presence=False)  # fmt: skip
        await forger.connect(require=True)
        follow = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "logs", run_id, "-f",
            "--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},  # no history: live only
        )  # fmt: skip
        seq = await until_printed(engine, follow, 0, "before")
        for level in ("globex-1", source):  # its own login's level, and the engine's name
            topic = events_topic("globex", "p", run_id, source=level)
            await forger.publish(topic, stopped(seq + 1, "Failed", 10**6), qos=1)
        seq = await until_printed(engine, follow, seq, "after")
        await engine.publish(events_topic("o", "p", run_id, source=source),
                             stopped(2, "Succeeded", seq), qos=1)  # fmt: skip
        out, err = await asyncio.wait_for(follow.communicate(), 20)
        await forger.disconnect()
        await engine.disconnect()
        return follow.returncode, out.decode(), err.decode()

    returncode, out, err = asyncio.run(scenario())
    assert returncode == 0, err
    assert "Traceback" not in err
    assert "which nothing vouches for" not in err, err  # refused, not doubted
    assert "never reached this command" not in err, err  # the engine's count is the one taken
    assert out.splitlines()[-1].endswith("INFO     load after"), out
    assert err.splitlines()[-1] == (
        f"cascade: refused 2 messages of the run's telemetry claiming {source}: "
        "2 not its topic's org or project"
    ), err
