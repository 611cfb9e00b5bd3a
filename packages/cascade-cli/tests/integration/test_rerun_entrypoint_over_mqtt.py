"""`cascade rerun RUN --entrypoint PATH.py:FUNCTION` on a real broker (mosquitto, or RabbitMQ
with ``CASCADE_TEST_BROKER=rabbitmq``): a plain script's run (no serving process, no history)
fails at one task; once its code is fixed, the command imports the workflow from the script,
plans the rerun (``--dry-run``) and runs it with an engine of its own on the broker, reusing
the completed task (``reused_from`` on the wire) and succeeding. A bad entrypoint exits 2 in
one line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, telemetry_filter
from cascade.runtime import ResultStore
from cascade.testkit import BrokerEndpoint

SCRIPT = """\
import asyncio

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task


@task
def extract(n: int) -> list[int]:
    with open("extracted", "a") as calls:  # each time it runs
        calls.write("x")
    return list(range(n))


@task
def transform(rows: list[int]) -> list[int]:
    return [row * 10 for row in rows if row != 3 or {bug}]


@task
def load(rows: list[int]) -> int:
    return sum(rows)


def etl(n: int = 5):
    return load(transform(extract(n)))


def helper() -> int:
    return 3


if __name__ == "__main__":
    connector = MqttConnector({host!r}, {port}, source_id="etl-script")
    print(asyncio.run(Engine(connector, results="results").run(etl())))
"""
BUG = "1 / 0 < 0"  # row 3: ZeroDivisionError
FIXED = "True"


async def _process(cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "XDG_DATA_HOME": str(cwd / "data")}
    env.pop("CASCADE_HISTORY_DB", None)
    env.pop("CASCADE_RESULTS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _cascade(broker: BrokerEndpoint, cwd: Path, *args: str) -> tuple[int, str, str]:
    address = ("--host", broker.host, "--port", str(broker.port), "--timeout", "10")
    return await _process(cwd, "-m", "cascade.cli", *args, *address)


def _script(tmp_path: Path, broker: BrokerEndpoint, bug: str) -> None:
    code = SCRIPT.format(host=broker.host, port=broker.port, bug=bug)
    (tmp_path / "etl.py").write_text(code, encoding="utf-8")


async def test_a_scripts_failed_run_is_rerun_from_its_entrypoint_reusing_what_completed(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    _script(tmp_path, mqtt_broker, BUG)
    code, out, err = await _process(tmp_path, "etl.py")
    assert code != 0
    assert "ZeroDivisionError" in err
    (manifest,) = (tmp_path / "results" / "runs").glob("*.json")
    failed = manifest.stem
    assert f"cascade: run {failed} (load) started" in err  # the script said which run it was
    assert (tmp_path / "extracted").read_text() == "x"

    _script(tmp_path, mqtt_broker, FIXED)  # the fix: transform's code changed
    short = failed[:12]
    rerun = ("rerun", short, "--entrypoint", "etl.py:etl", "--results", "results")
    code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun, "--dry-run", "--json")
    assert code == 0, err
    planned = json.loads(out)
    assert planned["outcome"] == "planned"
    assert planned["rerun_of"] == failed
    assert {s["task_name"]: (s["action"], s["why"]) for s in planned["plan"]} == {
        "extract": ("reuse", "unchanged"),
        "transform": ("run", "it had failed"),
        "load": ("run", "it was skipped (a task it needs had failed)"),
    }
    code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun, "--dry-run")
    assert code == 0, err
    assert f"A rerun of run {short} of etl.py:etl" in out
    assert out.splitlines()[-1] == "2 to run, 1 to reuse; nothing was started"
    assert not (tmp_path / "data").exists()  # no history was needed, nor made

    events: list[dict[str, Any]] = []
    stopped = asyncio.Event()
    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as reader:

        def heard(message: Message) -> None:
            body = message.payload.get("body")
            if message.payload.get("run_id") != failed and isinstance(body, dict):
                events.append(body)
                if body.get("event") == "ENGINE_STOPPED":
                    stopped.set()

        await reader.subscribe(telemetry_filter(), heard)
        code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun)
        assert code == 0, (out, err)
        started, ended = out.splitlines()
        assert started.startswith("started etl.py:etl as run ")
        assert started.endswith(f" (a rerun of {short})")
        rerun_id = started.split(" as run ", 1)[1][:12]
        assert ended == f"run {rerun_id} Succeeded"
        await asyncio.wait_for(stopped.wait(), 15)  # the rerun's end, heard on the broker
    reused = [e for e in events if e.get("task_name") == "extract" and e.get("state")]
    assert [(e["state"], e.get("reused_from")) for e in reused] == [("COMPLETED", failed)]
    assert (tmp_path / "extracted").read_text() == "x"  # extract ran once in all
    (second,) = [p for p in (tmp_path / "results" / "runs").glob("*.json") if p != manifest]
    kept = ResultStore(str(tmp_path / "results")).manifest(second.stem)
    assert (kept.status, kept.rerun_of) == ("Succeeded", failed)
    assert kept.tasks["extract#1"].from_run == failed


@pytest.mark.parametrize(
    ("entrypoint", "said"),
    [
        ("nowhere.py:etl", "--entrypoint nowhere.py:etl: no file nowhere.py"),
        ("etl.py:elt", "--entrypoint etl.py:elt: etl.py has no function elt"),
        ("etl.py:helper", "--entrypoint etl.py:helper is not a workflow: it returned int"),
        ("etl.py", "--entrypoint takes PATH.py:FUNCTION, not 'etl.py'"),
    ],
)
async def test_a_bad_entrypoint_exits_2_saying_why_in_one_line(
    mqtt_broker: BrokerEndpoint, tmp_path: Path, entrypoint: str, said: str
) -> None:
    _script(tmp_path, mqtt_broker, BUG)
    code, out, err = await _process(tmp_path, "etl.py")
    assert code != 0
    (manifest,) = (tmp_path / "results" / "runs").glob("*.json")
    code, out, err = await _cascade(
        mqtt_broker, tmp_path, "rerun", manifest.stem[:12], "--entrypoint", entrypoint,
        "--results", "results",
    )  # fmt: skip
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert said in err
    assert len(list((tmp_path / "results" / "runs").glob("*.json"))) == 1  # nothing ran


MAP_SCRIPT = """\
import asyncio
import os

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def transform(record: int) -> int:
    with open("transformed", "a") as calls:  # each time an item runs
        calls.write("x")
    if record == 137 and not os.path.exists("fixed"):
        raise ValueError("record 137 has a negative amount")
    return record * 10


@task
def load(rows: list[int]) -> int:
    return sum(rows)


def etl(n: int = 200):
    return load(transform.map(record=extract(n)))


if __name__ == "__main__":
    connector = MqttConnector({host!r}, {port}, source_id="etl-script")
    print(asyncio.run(Engine(connector, results="results").run(etl())))
"""


async def test_the_plan_says_how_many_map_items_the_rerun_reuses_and_it_does(
    mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """The issue's ETL: a map over 200 extracted records, one failed. The plan says the map
    runs again, 199 of its items reused and 1 run; the rerun does just that."""
    script = MAP_SCRIPT.format(host=mqtt_broker.host, port=mqtt_broker.port)
    (tmp_path / "etl.py").write_text(script, encoding="utf-8")
    code, out, err = await _process(tmp_path, "etl.py")
    assert code != 0
    assert "record 137" in err
    (manifest,) = (tmp_path / "results" / "runs").glob("*.json")
    failed = manifest.stem
    assert len((tmp_path / "transformed").read_text()) == 200
    (tmp_path / "fixed").touch()

    rerun = ("rerun", failed[:12], "--entrypoint", "etl.py:etl", "--results", "results")
    code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun, "--dry-run", "--json")
    assert code == 0, err
    (step,) = [s for s in json.loads(out)["plan"] if s["task_name"] == "transform"]
    assert (step["action"], step["items"], step["items_reused"]) == ("run", 200, 199)
    assert step["why"] == "1 of 200 items had failed; 199 kept will be reused, 1 runs again"
    code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun, "--dry-run")
    assert code == 0, err
    said = "2 to run, 1 to reuse (of 200 map items, 1 to run, 199 to reuse); nothing was started"
    assert " ".join(out.split()).endswith(said), out  # wrapped at 80 columns

    code, out, err = await _cascade(mqtt_broker, tmp_path, *rerun)
    assert code == 0, (out, err)
    assert len((tmp_path / "transformed").read_text()) == 200 + 1  # the one item ran again
    (second,) = [p for p in (tmp_path / "results" / "runs").glob("*.json") if p != manifest]
    kept = ResultStore(str(tmp_path / "results")).manifest(second.stem)
    items = [t for key, t in kept.tasks.items() if key.startswith("transform#") and "[" in key]
    assert len(items) == step["items"]
    assert sum(t.from_run == failed for t in items) == step["items_reused"]
