"""Gates through `cascade` against a real broker and a real engine: `cascade held` lists them
awaiting approval with their prompts; `retry` is refused (exit 1); `complete --result` approves
with that value, `complete` alone with true; `fail` rejects, naming who and why."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, GateRejected, RunStarted, TaskFailedError, TaskHeld, gate, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint

Said = tuple[int, str, str]


async def _cascade(broker: BrokerEndpoint, env: dict[str, str], *args: str) -> Said:
    """`cascade ARGS` in a process of its own: exit code, out, err."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", *args, *address, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_gates_are_listed_with_their_prompts_and_approved_or_rejected(
    mqtt_broker: BrokerEndpoint, scope_name: str, tmp_path: Path
) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # no default history
    env.pop("CASCADE_HISTORY_DB", None)
    got: dict[str, Any] = {}

    @task(name=f"{scope_name}_after")
    def after(which: str, approval: Any) -> None:
        got[which] = approval

    @task(name=f"{scope_name}_version")
    def version() -> str:
        return "v1.2"

    @task(name=f"{scope_name}_ask")
    def ask(v: str) -> str:
        return f"Deploy {v} to production?"

    names = {key: f"{scope_name}_{key}" for key in ("deploy", "migrate", "announce")}
    gates = {
        "deploy": gate(ask(version()), name=names["deploy"]),
        "migrate": gate("Run the migration?", name=names["migrate"]),
        "announce": gate("Announce it?", name=names["announce"], deadline=600),
    }
    source = f"engine-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=1.0,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run([after(key, lazy) for key, lazy in gates.items()]))
    try:
        await recorder.until(
            lambda: len([e for e in recorder.events if isinstance(e, TaskHeld)]) == 3
        )
        (started,) = [e for e in recorder.events if isinstance(e, RunStarted)]
        short = started.run_id[:12]

        listed, tabled, retried = await asyncio.gather(  # reads (the retry is refused): at once
            _cascade(mqtt_broker, env, "held", "--json", "--task", f"{scope_name}_*"),
            _cascade(mqtt_broker, env, "held", "--task", names["migrate"]),
            _cascade(mqtt_broker, env, "retry", short, names["deploy"]),
        )
        code, out, err = listed
        assert code == 0, err
        held = {row["task_name"]: row for row in json.loads(out)["held"]}
        assert sorted(held) == sorted(names.values())
        deploy = held[names["deploy"]]
        assert (deploy["awaits_approval"], deploy["prompt"]) == (True, "Deploy v1.2 to production?")
        assert (deploy["attempt"], deploy["error"], deploy["default"]) == (1, "", "fail")
        assert deploy["source"] == source
        assert held[names["migrate"]]["prompt"] == "Run the migration?"

        code, out, err = tabled
        assert code == 0, err
        words = out.replace("│", " ").split()  # the table folds its cells
        assert {"awaiting", "approval:", "migration?"} <= set(words)

        code, out, err = retried
        assert code == 1
        assert "is a gate: it has no attempt to retry" in err

        approve = ("complete", short, names["deploy"], "--result", '"yes"', "--as", "alice")
        code, out, err = await _cascade(mqtt_broker, env, *approve)
        assert code == 0, err
        assert out.startswith(f"completed {names['deploy']} ")
        code, out, err = await _cascade(mqtt_broker, env, "complete", short, names["migrate"])
        assert code == 0, err
        reject = ("fail", short, names["announce"], "--as", "carol", "--reason", "not today")
        code, out, err = await _cascade(mqtt_broker, env, *reject)
        assert code == 0, err
        assert out.startswith(f"failed {names['announce']} ")

        with pytest.raises(TaskFailedError) as raised:
            await asyncio.wait_for(run, 30)
        assert isinstance(raised.value.exception, GateRejected)
        assert str(raised.value.exception) == "rejected by carol: not today"
        assert got == {"deploy": "yes", "migrate": True}
    finally:
        if not run.done():
            run.cancel()
            with contextlib.suppress(BaseException):
                await run
