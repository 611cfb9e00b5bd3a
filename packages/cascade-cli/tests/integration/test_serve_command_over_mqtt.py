"""`cascade serve PATH.py:NAME` on a real broker (mosquitto, or RabbitMQ with
``CASCADE_TEST_BROKER=rabbitmq``), as a supervisor runs it: a real process serving a file's
workflows (a function and a target with a module-level Param), announced, started by a
request, its run keeping its results in the store given; SIGTERM ends it cleanly, its
announcement cleared. A file or name that is no workflow exits 2 in one line, before anything
connects."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller, wait_run
from cascade.testkit import BrokerEndpoint

FLOWS = """\
from cascade.runtime import Param, task

day = Param("day", default="mon", description="the day to load")


@task
def extract(day: str) -> str:
    return f"rows of {day}"


def etl():
    return extract(day)


def report(rows: int = 5):
    \"\"\"Write the report.

    Args:
        rows: how many rows to report
    \"\"\"
    return extract(str(rows))


workflows = {"etl": etl, "report": report}
"""


async def test_cascade_serve_serves_a_files_workflows_until_sigterm(
    mqtt_broker: BrokerEndpoint, tmp_path: Path, scope_name: str
) -> None:
    (tmp_path / "flows.py").write_text(FLOWS, encoding="utf-8")
    source = f"{scope_name}-server"
    env = {**os.environ}
    env.pop("CASCADE_RESULTS", None)
    address = ("--host", mqtt_broker.host, "--port", str(mqtt_broker.port))
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", "serve", "flows.py:workflows", *address,
        "--source", source, "--org", "acme", "--project", scope_name, "--results", "kept",
        cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    operator = MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False)
    await operator.connect(require=True)
    try:
        control = Controller(operator, timeout=20)

        async def announced() -> list[str]:
            while True:
                found = [s for s in await control.served() if s.source == source and s.online]
                if found:
                    return [w.name for w in found[0].announcement.workflows]

        names = await asyncio.wait_for(announced(), 60)
        assert sorted(names) == ["etl", "report"]
        (served,) = [s for s in await control.served() if s.source == source]
        params = {w.name: w.params for w in served.announcement.workflows}
        assert [(p.name, p.default, p.description) for p in params["etl"]] == [
            ("day", "mon", "the day to load")
        ]
        assert params["report"][0].description == "how many rows to report"
        reply = await control.start("etl", {"day": "tue"}, on=source)
        assert reply.outcome == "started", reply.error
        assert reply.run_id is not None
        status = await wait_run(
            operator, reply.run_id, owner=source, org="acme", project=scope_name, timeout=60
        )
        assert status == "Succeeded"
        assert list((tmp_path / "kept" / "runs").glob(f"{reply.run_id}*"))  # --results kept it
        server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 60)
        assert code == 0, await server.stderr.read() if server.stderr else ""
        gone = [s for s in await control.served() if s.source == source]
        assert gone == []  # its announcement cleared
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        await operator.disconnect()


async def test_cascade_serve_refuses_what_is_no_workflow_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text("workflows = 3\n", encoding="utf-8")
    for given, said in (
        ("flows.py:workflows", "workflows is a value of type int, neither workflows"),
        ("flows.py:missing", "the file defines no missing"),
        ("nope.py:workflows", "no file nope.py"),
        ("flows.py", "cascade serve takes PATH.py:NAME"),
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cascade.cli", "serve", given, "--port", "1",
            cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2, err
        assert said in err.decode(), err
