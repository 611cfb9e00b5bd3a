"""`cascade record` as a real process on a private mosquitto, recording a real engine's run;
Ctrl-C ends it cleanly; then `cascade runs --status failed --json` finds the failed run; and
`cascade audit` names who paused, resumed and cancelled (the latter two on either broker family)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import (
    Engine,
    RunCancelledError,
    RunStarted,
    TaskFailedError,
    TaskRunning,
    task,
)
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, MosquittoBroker

CASCADE = [sys.executable, "-m", "cascade.cli"]


@task
async def extract(n: int) -> int:
    return n


@task
async def validate_checksums(values: list[int]) -> None:
    raise ValueError(f"checksum mismatch in partition {len(values)}")


async def _failing_run(broker: MosquittoBroker) -> None:
    engine = Engine(
        MqttConnector(broker.host, broker.port, source_id="it-engine"),
        project_id="it-record",
        heartbeat_interval=0.2,
    )
    with pytest.raises(TaskFailedError):
        await engine.run(validate_checksums([extract(n) for n in range(5)]))


def test_record_then_runs_status_failed(mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    """The recorder prints its database, records the run, ends on SIGINT with 0 and a summary."""
    db = tmp_path / "history.sqlite3"
    address = f"{mosquitto_broker.host}:{mosquitto_broker.port}"
    recorder = subprocess.Popen(
        [*CASCADE, "record", "--host", address, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert recorder.stdout is not None
        first = recorder.stdout.readline()  # printed once subscribed
        assert first == f"recording {address} into {db} (keeping everything); Ctrl-C ends it\n"
        asyncio.run(_failing_run(mosquitto_broker))
        failed: list[dict[str, Any]] = []
        for _ in range(100):  # the recorder writes within moments: wait for the run's end
            found = subprocess.run(
                [*CASCADE, "runs", "--db", str(db), "--status", "failed", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert found.returncode == 0, found.stderr
            failed = json.loads(found.stdout)
            if failed:
                break
            time.sleep(0.1)
        recorder.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate()
    assert recorder.returncode == 0, err
    assert out.startswith(f"recorded into {db}: ")
    assert "0 rejected, 0 refused, 0 dropped" in out
    [run] = failed
    assert (run["project_id"], run["source"], run["status"]) == ("it-record", "it-engine", "Failed")
    assert run["error"].endswith("ValueError: checksum mismatch in partition 5")
    assert run["tasks"] == {"COMPLETED": 5, "FAILED": 1}
    assert run["planned_tasks"] == 6


def _audit(db: Path) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [*CASCADE, "audit", "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    events: list[dict[str, Any]] = json.loads(listed.stdout)
    return events


def test_the_audit_says_who_paused_and_who_resumed_and_why(
    mqtt_broker: BrokerEndpoint, tmp_path: Path, scope_name: str
) -> None:
    """`pause --as alice --reason`, then `resume --as bob --reason`, through a recorder process:
    the audit names each writer and reason (the resume's from its clear note)."""
    db = tmp_path / "history.sqlite3"
    address = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port)]
    scope = f"task:{scope_name}"
    recorder = subprocess.Popen(
        [*CASCADE, "record", *address, "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert recorder.stdout is not None
        recorder.stdout.readline()  # printed once subscribed
        for command in (
            ["pause", scope, "--as", "alice", "--reason", "warehouse maintenance"],
            ["resume", scope, "--as", "bob", "--reason", "maintenance over"],
        ):
            done = subprocess.run([*CASCADE, *command, *address], capture_output=True, text=True,
                                  timeout=60, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr
        said: list[tuple[str, str | None, str | None]] = []
        for _ in range(100):  # the recorder writes within moments
            said = [(e["action"], e["issued_by"], e["reason"]) for e in _audit(db)
                    if e["scope"] == scope]  # fmt: skip
            if said and said[0][1] == "bob":
                break
            time.sleep(0.1)  # polling another process's database
        recorder.send_signal(signal.SIGINT)
        recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate()
    assert said == [
        ("cleared", "bob", "maintenance over"),
        ("set", "alice", "warehouse maintenance"),
    ]


def test_the_audit_says_who_cancelled_which_run_and_what_it_stopped(
    mqtt_broker: BrokerEndpoint, tmp_path: Path, scope_name: str
) -> None:
    """An engine running slow tasks, a recorder process, `cascade cancel RUN --as alice
    --reason x`: the engine's answer reaches the recorder, and `cascade audit --json` has the
    cancel (who, why, when, which run, what it stopped)."""
    db = tmp_path / "history.sqlite3"
    address = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port)]
    recorder = subprocess.Popen(
        [*CASCADE, "record", *address, "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert recorder.stdout is not None
        recorder.stdout.readline()  # printed once subscribed
        asked_at = time.time()
        run_id, cancelled = asyncio.run(_cancelled_run(mqtt_broker, scope_name, address))
        found: list[dict[str, Any]] = []
        for _ in range(100):  # the recorder writes within moments
            found = [e for e in _audit(db) if e["action"] == "cancelled"]
            if found:
                break
            time.sleep(0.1)  # polling another process's database
        recorder.send_signal(signal.SIGINT)
        out, err = recorder.communicate(timeout=30)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.communicate()
    assert recorder.returncode == 0, err
    assert "0 rejected" in out
    [cancel] = found
    assert cancel["run_id"] == run_id
    assert cancel["scope"] == f"run:{run_id}"
    assert (cancel["source"], cancel["issued_by"], cancel["reason"]) == (
        f"engine-{scope_name}",
        "alice",
        "x",
    )
    assert asked_at <= cancel["issued_at"] <= cancel["at"]
    stopped = cancel["stopped"]
    assert (stopped["outcome"], stopped["cancelled_count"], stopped["not_started"]) == (
        "cancelled",
        3,
        2,
    )
    assert sorted(t["task_name"] for t in stopped["cancelled"]) == [f"{scope_name}_slow"] * 3
    assert cancelled.startswith(f"cancelled run {run_id} on engine-{scope_name}: 3 running")


async def _cancelled_run(
    broker: BrokerEndpoint, scope_name: str, address: list[str]
) -> tuple[str, str]:
    """Three slow coroutine tasks running and two waiting on them, cancelled by `cascade
    cancel` (a process); the run's id and what the command said."""

    @task(name=f"{scope_name}_slow")
    async def slow(n: int) -> int:
        await asyncio.Event().wait()
        return n

    @task(name=f"{scope_name}_after")
    async def after(values: list[int]) -> int:
        return sum(values)

    engine = Engine(
        MqttConnector(broker.host, broker.port, source_id=f"engine-{scope_name}"),
        heartbeat_interval=None,
    )
    events = EventRecorder()
    engine.events.subscribe(events)
    slow_ones = [slow(n) for n in range(3)]
    run = asyncio.create_task(engine.run([after(slow_ones), after(slow_ones)]))
    await events.until(lambda: len(events.names(TaskRunning)) == 3)
    (started,) = [e for e in events.events if isinstance(e, RunStarted)]
    command = [*CASCADE, "cancel", started.run_id, "--as", "alice", "--reason", "x", *address]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 10)
    return started.run_id, done.stdout
