"""`cascade held`, `retry` and `skip` against a real broker and a real engine: the issue's
scenario, `report(load(4))` and `side(1)` both held after failing; two retries of one hold at
once, from two processes: exactly one is applied."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces import (
    Envelope,
    Message,
    RunSnapshot,
    encode_payload,
    heartbeat_topic,
    snapshot_topic,
)
from cascade.interfaces.commands import snapshot_request_topic
from cascade.interfaces.summaries import summary_topic
from cascade.runtime import DependencyMissingError, Engine, RunStarted, TaskHeld, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint, HeldTask, HoldingEngine

Said = tuple[int, str, str]


async def _cascade(broker: BrokerEndpoint, env: dict[str, str], *args: str) -> Said:
    """`cascade ARGS` in a process of its own (two may run at once): exit code, out, err."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", *args, *address, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_held_tasks_are_listed_retried_once_and_skipped(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    fixed = tmp_path / "api-is-back"  # the cause, fixed when it exists
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    load_name, side_name = f"{scope_name}_load", f"{scope_name}_side"
    loads = 0

    @task(name=load_name, on_failure="hold")
    async def load(n: int) -> int:
        nonlocal loads
        loads += 1
        if not fixed.exists():
            raise ConnectionError("the API is down")
        return n * 2

    @task(name=f"{scope_name}_report")
    async def report(value: int) -> str:
        return f"report of {value}"

    @task(name=side_name, on_failure="hold")
    async def side(n: int) -> int:
        raise KeyError("id")

    source = f"engine-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=1.0,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([report(load(4)), side(1)]))
    try:
        await recorder.until(
            lambda: len([e for e in recorder.events if isinstance(e, TaskHeld)]) == 2
        )
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        run_id = started.run_id

        code, out, err = await _cascade(
            mqtt_broker, env, "held", "--json", "--task", f"{scope_name}_*"
        )
        assert code == 0, err
        held = {row["task_name"]: row for row in json.loads(out)["held"]}
        assert sorted(held) == [load_name, side_name]
        assert {row["run_id"] for row in held.values()} == {run_id}
        assert (held[load_name]["attempt"], held[load_name]["error"]) == (
            1,
            "ConnectionError: the API is down",
        )
        assert held[side_name]["error"] == "KeyError: 'id'"
        assert held[load_name]["default"] == "fail"
        assert held[load_name]["source"] == source

        fixed.touch()
        short = run_id[:12]
        retry = ("retry", short, load_name, "--reason", "API back", "--as")
        first, second = await asyncio.gather(
            _cascade(mqtt_broker, env, *retry, "alice"), _cascade(mqtt_broker, env, *retry, "bob")
        )
        assert sorted([first[0], second[0]]) == [0, 1], (first, second)
        won, lost = (first, second) if first[0] == 0 else (second, first)
        winner = "alice" if won is first else "bob"
        assert won[1].startswith(f"retried {load_name} ")
        assert won[1].rstrip().endswith(": attempt 2 starts")
        assert f"retry by {winner} " in lost[2], lost  # already decided, or no longer held

        code, out, err = await _cascade(
            mqtt_broker, env, "skip", short, side_name, "--as", "carol", "--reason", "not today"
        )
        assert code == 0, err
        assert out.startswith(f"skipped {side_name} ")
        with pytest.raises(DependencyMissingError, match=r"<Target Output>\[1\]"):
            await asyncio.wait_for(run, 30)  # side skipped: the run succeeded, side has none
    finally:
        if not run.done():
            run.cancel()
    assert loads == 2  # the failed attempt and one retry: the second retry was not applied


async def test_held_says_since_when_and_what_waits_from_the_engines_answer(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """A task held before `cascade held` started: its `since` is when its engine held it, not
    when the command asked, and what waits in its run comes from the engine's answer."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    load_name = f"{scope_name}_load"
    release = asyncio.Event()

    @task(name=load_name, on_failure="hold")
    async def load(n: int) -> int:
        raise ConnectionError("the API is down")

    @task(name=f"{scope_name}_report")
    async def report(value: int) -> str:
        return f"report of {value}"

    @task(name=f"{scope_name}_slow")
    async def slow() -> None:
        await release.wait()

    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"engine-{scope_name}"),
        heartbeat_interval=3600.0,  # no heartbeat within the test: the answer alone says it
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([report(load(4)), slow()]))
    try:
        await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
        (held_event,) = [e for e in recorder.events if isinstance(e, TaskHeld)]
        asked_at = time.time()
        code, out, err = await _cascade(mqtt_broker, env, "held", "--json", "--task", load_name)
        assert code == 0, err
        (row,) = json.loads(out)["held"]
        since = datetime.fromisoformat(row["since"]).timestamp()
        assert abs(since - held_event.ts) < 0.01, (row["since"], held_event.ts)
        assert row["age_s"] >= asked_at - held_event.ts
        # the run's report waits for the held load (pending), nothing else is blocked
        assert (row["run_blocked"], row["run_pending"]) == (1, 1), row

        wide, asked_again = {**env, "COLUMNS": "200"}, time.time()
        code, out, err = await _cascade(mqtt_broker, wide, "held", "--task", load_name)
        assert code == 0, err
        (line,) = [line for line in out.splitlines() if load_name in line]
        assert "1 blocked, 1 pending" in line, out
        held_for = float(line.split("│")[5].strip().removesuffix("s"))
        assert held_for >= round(asked_again - held_event.ts, 1) - 0.1 > 0, out
    finally:
        release.set()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await run


async def test_a_second_operator_hears_already_decided_once_the_first_ended_the_run(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """Alice's skip ends the run; Bob's, sent after (his history knows the run's engine), is
    answered already decided, by whom, not left to time out."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    load_name = f"{scope_name}_load"
    db = tmp_path / "history.sqlite3"

    @task(name=load_name, on_failure="hold")
    async def load() -> int:
        raise ConnectionError("the API is down")

    source = f"e-{scope_name}"
    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
    engine = Engine(connector, heartbeat_interval=1.0)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    with History(db, mode="write") as history:
        async with (
            connector,  # the engine's connection outlives the run
            MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening,
        ):
            recording = Recorder(listening, history)
            await recording.start()
            run = asyncio.create_task(engine.run(load()))
            try:
                await recorder.until(lambda: any(isinstance(e, TaskHeld) for e in recorder.events))
                (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
                short = started.run_id[:12]
                alice = ("--as", "alice", "--reason", "not today")
                code, _out, err = await _cascade(mqtt_broker, env, "skip", short, load_name,
                                                 *alice)  # fmt: skip
                assert code == 0, err
                with pytest.raises(DependencyMissingError):  # alice's skip ended it
                    await asyncio.wait_for(run, 15)
                await _recorded(history, source)
                code, _out, err = await _cascade(mqtt_broker, env, "skip", short, load_name,
                                                 "--as", "bob", "--db", str(db))  # fmt: skip
            finally:
                run.cancel()
                await recording.stop()
    assert code == 1
    assert "already decided: skip by alice" in err, err
    assert "(not today)" in err
    assert (engine.stats.decisions, engine.stats.decisions_refused) == (1, 1)


async def _recorded(history: History, source: str) -> None:
    """Until the history has the run, from ``source``."""

    async def wait() -> None:
        while [run.source for run in history.runs()] != [source]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the history has no event to await

    await asyncio.wait_for(wait(), 10)


async def test_held_lists_all_of_a_thousand_held_tasks_of_one_run(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """A thousand tasks held in one run: its engine's answer comes in several parts, and
    `cascade held --json` lists every task, not those of the first part alone."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    load_name = f"{scope_name}_load"

    @task(name=load_name, on_failure="hold")
    async def load(n: int) -> int:
        raise ConnectionError(f"the API is down for item {n} of the nightly batch")

    connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=f"e-{scope_name}")
    engine = Engine(connector, heartbeat_interval=1.0)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([load(n) for n in range(1000)]))
    try:
        await recorder.until(
            lambda: sum(isinstance(e, TaskHeld) for e in recorder.events) == 1000, timeout=60
        )
        code, out, err = await _cascade(mqtt_broker, env, "held", "--json")
    finally:
        run.cancel()
        with contextlib.suppress(BaseException):
            await run
    assert code == 0, err
    listed = json.loads(out)
    assert len(listed["held"]) == 1000
    assert "incomplete" not in listed


async def test_held_waits_for_a_runs_own_answer_not_one_forged_on_another_orgs_topic(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    """A login of globex answers `cascade held`'s question about a run of ``local``, as the
    run's engine, on globex's topics of the same project (its login's level, and the engine's
    name): the answer of a run whose engine is slow to answer is still awaited (its held tasks
    may not all be listed: said, exit 1; its heartbeat's held task listed without its error)
    and the forged ones are said refused; a run whose engine answers is listed, error and
    all."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    project = f"etl-{scope_name}"
    slow_run, quick_run = uuid.uuid4().hex, uuid.uuid4().hex
    forged_sent = asyncio.Event()

    async def engine(source: str, run_id: str, answers: bool) -> HoldingEngine:
        connector = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source)
        await connector.connect(require=True)
        held = HeldTask(f"{scope_name}-{source}-1", f"{scope_name}_load")
        holding = HoldingEngine(connector, run_id, [held], project_id=project,
                                heartbeat_every=0.2, snapshots=answers, summary=True)  # fmt: skip
        await holding.start()
        return holding

    slow = await engine(f"e-{scope_name}-slow", slow_run, answers=False)
    quick = await engine(f"e-{scope_name}-quick", quick_run, answers=True)
    forger = MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id="globex-1",
                           presence=False)  # fmt: skip
    await forger.connect(require=True)
    asked: list[bool] = []

    async def on_asked(message: Message) -> None:
        asked.append(True)

    async def on_beat(message: Message) -> None:
        if not asked or forged_sent.is_set():
            return  # the run's heartbeat after the question: `cascade held` knows the run
        forged_sent.set()
        answer = RunSnapshot(after=0, through=0, last_seq=0, blocked=0, tasks=[])
        claimed = Envelope(run_id=slow_run, org_id="local", project_id=project,
                           source=slow.source, body=answer)  # fmt: skip
        for level in ("globex-1", slow.source):
            topic = snapshot_topic("globex", project, slow_run, source=level)
            await forger.publish(topic, encode_payload(claimed), qos=1)

    await forger.subscribe(snapshot_request_topic(slow_run), on_asked)
    await forger.subscribe(heartbeat_topic("local", project, slow_run), on_beat)
    try:
        address = ["--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--timeout", "3"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "held", "--json", "--project", project,
            *address, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        for holding in (slow, quick):
            await holding.stop()
            await holding.connector.publish(  # its retained summary goes: no run is left live
                summary_topic(holding.source), b"", qos=1, retain=True
            )
            await holding.connector.disconnect()
        await forger.disconnect()
    assert forged_sent.is_set()
    assert process.returncode == 1, err.decode()
    listed = json.loads(out)
    assert listed["incomplete"] == [slow_run]
    rows = sorted((row["run_id"], row["error"]) for row in listed["held"])
    assert rows == sorted([(quick_run, "ValueError: the API is down"), (slow_run, "")])
    said = err.decode().splitlines()
    refused = (
        f"cascade: refused 2 messages claiming {slow.source}: 2 not its topic's org or project"
    )
    assert refused in said, said
