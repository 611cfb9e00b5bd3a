"""Issue 49's scenario end to end, on a real broker (mosquitto, or RabbitMQ with
``CASCADE_TEST_BROKER=rabbitmq``): a real engine serves ``load(transform(extract(n)))``;
``cascade start`` starts it and it fails at transform; once the cause is fixed, ``cascade
rerun`` (the 12-character id every table prints) reuses extract, whose function ran once in
all, and succeeds; the history (a real recorder) links the two runs. ``--dry-run`` names what
would run and why, a changed parameter re-executes exactly the tasks it reaches, and a missing
stored result forces its task and says so."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces import Message
from cascade.interfaces.serving import served_topic
from cascade.runtime import Engine, task
from cascade.testkit import BrokerEndpoint

Said = tuple[int, str, str]


async def _cascade(broker: BrokerEndpoint | None, env: dict[str, str], *args: str) -> Said:
    """`cascade ARGS` in a process of its own (on ``broker``, unless ``None``): exit code,
    out, err."""
    address = (
        ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"] if broker else []
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", *args, *address, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``condition`` holds of the history (the recorder writes it in batches of
    its own, with nothing to await from outside)."""

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - nothing to await from outside
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def _plan(out: str) -> dict[str, tuple[str, str]]:
    """A dry run's `--json` plan: task name -> (action, why)."""
    return {step["task_name"]: (step["action"], step["why"]) for step in json.loads(out)["plan"]}


async def test_a_failed_served_run_is_rerun_from_the_cli_reusing_what_succeeded(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    fixed = tmp_path / "negative-amounts-fixed"  # the cause, fixed when it exists
    calls: Counter[str] = Counter()
    workflow = scope_name

    @task(name=f"{scope_name}_extract")
    def extract(n: int) -> list[int]:
        calls["extract"] += 1
        return list(range(n))

    @task(name=f"{scope_name}_transform")
    def transform(rows: list[int]) -> list[int]:
        calls["transform"] += 1
        if not fixed.exists():
            raise ValueError("row 3 has a negative amount")
        return [row * 10 for row in rows]

    @task(name=f"{scope_name}_load")
    async def load(rows: list[int]) -> int:
        calls["load"] += 1
        return sum(rows)

    def nightly(n: int = 5) -> Any:
        return load(transform(extract(n)))

    source = f"serve-{scope_name}"
    results = tmp_path / "results"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=1.0,
        results=str(results),
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("CASCADE_HISTORY_DB", None)
    db = tmp_path / "history.sqlite3"
    announced = asyncio.Event()

    def heard(message: Message) -> None:
        if message.payload:
            announced.set()

    with History(db, mode="write") as history:
        async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening:
            recorder = Recorder(listening, history)
            await recorder.start()
            await listening.subscribe(served_topic("local", "default", source), heard)
            serving = asyncio.create_task(engine.serve({workflow: nightly}))
            try:
                await asyncio.wait_for(announced.wait(), 15)
                runs = await _scenario(mqtt_broker, env, db, history, workflow, scope_name)
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
            await recorder.flush(timeout=5)
            await recorder.stop()
        failed_run, rerun_id = runs
        [replaced] = [r for r in history.runs() if r.run_id == failed_run]
    assert calls == {"extract": 1, "transform": 2, "load": 1}  # extract ran once in all
    assert [(link.run_id, link.status) for link in replaced.replaced_by] == [
        (rerun_id, "Succeeded")
    ]


async def _scenario(
    broker: BrokerEndpoint,
    env: dict[str, str],
    db: Path,
    history: History,
    workflow: str,
    scope_name: str,
) -> tuple[str, str]:
    """The CLI's part: served, start (fails), the cause fixed, rerun's dry run, rerun
    (succeeds), what `cascade run` says of both, a changed parameter's and a missing result's
    dry runs. Returns the failed run's id and its rerun's."""
    extract, transform, load = (f"{scope_name}_{name}" for name in ("extract", "transform", "load"))
    code, out, err = await _cascade(broker, env, "served", "--json")
    assert code == 0, err
    assert workflow in out

    code, out, err = await _cascade(
        broker, env, "start", workflow, "--wait", "--json", "--as", "alice"
    )
    assert code == 1, (out, err)  # the run failed
    first = json.loads(out)
    assert (first["outcome"], first["status"]) == ("started", "Failed")
    failed_run = first["run_id"]
    await _until(lambda: [r.status for r in history.runs()] == ["Failed"])

    short = failed_run[:12]
    (db.parent / "negative-amounts-fixed").touch()
    base = ("--db", str(db))
    code, out, err = await _cascade(broker, env, "rerun", short, "--dry-run", "--json", *base)
    assert code == 0, err
    assert _plan(out) == {
        extract: ("reuse", "unchanged"),
        transform: ("run", "it had failed"),
        load: ("run", "it was skipped (a task it needs had failed)"),
    }

    code, out, err = await _cascade(broker, env, "rerun", short, "--wait", "--json", *base)
    assert code == 0, (out, err)
    second = json.loads(out)
    assert (second["outcome"], second["status"]) == ("started", "Succeeded")
    assert second["rerun_of"] == failed_run
    rerun_id = second["run_id"]
    await _until(lambda: "Succeeded" in [r.status for r in history.runs()])
    code, out, err = await _cascade(None, env, "run", short, *base)
    assert code == 0, err
    assert f"replaced by {rerun_id[:12]}" in out
    code, out, err = await _cascade(None, env, "run", rerun_id[:12], *base)
    assert code == 0, err
    assert f"rerun of {short}" in out
    assert f"reused from {short}" in out

    # A changed parameter re-executes exactly the tasks it reaches: all three here.
    code, out, err = await _cascade(
        broker, env, "rerun", rerun_id[:12], "--param", "n=6", "--dry-run", "--json", *base
    )
    assert code == 0, err
    assert {action for action, _ in _plan(out).values()} == {"run"}
    assert _plan(out)[extract][1].startswith("its input changed")

    # A missing stored result forces its task and says so.
    shutil.rmtree(db.parent / "results" / "results")
    code, out, err = await _cascade(
        broker, env, "rerun", rerun_id[:12], "--dry-run", "--json", *base
    )
    assert code == 0, err
    action, why = _plan(out)[extract]
    assert action == "force"
    assert "missing" in why
    return failed_run, rerun_id


async def test_a_served_run_is_rerun_without_a_history_by_the_process_that_ran_it(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """No history at all (nothing recorded it): `cascade rerun SHORT` finds the run in its
    engine's summary, named after the workflow its process serves, and sends the rerun to
    that process, which reruns it from its own results."""
    fixed = tmp_path / "fixed"

    @task(name=f"{scope_name}_extract")
    def extract(n: int) -> list[int]:
        return list(range(n))

    @task(name=f"{scope_name}_transform")
    def transform(rows: list[int]) -> list[int]:
        if not fixed.exists():
            raise ValueError("row 3 has a negative amount")
        return rows

    def etl(n: int = 3) -> Any:
        return transform(extract(n))

    source = f"serve-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        results=str(tmp_path / "results"),
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no history there
    env.pop("CASCADE_HISTORY_DB", None)
    announced = asyncio.Event()
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening:
        await listening.subscribe(
            served_topic("local", "default", source),
            lambda message: announced.set() if message.payload else None,
        )
        serving = asyncio.create_task(engine.serve({scope_name: etl}))
        try:
            await asyncio.wait_for(announced.wait(), 15)
            code, out, err = await _cascade(mqtt_broker, env, "start", scope_name, "--wait")
            assert code == 1, (out, err)  # it failed
            short = out.split(" as run ", 1)[1][:12]
            fixed.touch()
            code, out, err = await _cascade(mqtt_broker, env, "rerun", short, "--wait")
            assert code == 0, (out, err)
            assert out.startswith(f"started {scope_name} as run ")
            assert f"on {source} (a rerun of {short})" in out
            assert out.splitlines()[-1].endswith(" Succeeded")
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
    assert not (tmp_path / "data").exists()  # nothing was recorded, nor made
