"""Scenario: a served run's engine is killed (SIGKILL) mid-run and another server carries the
run on; what the views say of it, over a real mosquitto. `cascade watch`'s view (its reader
and rendering) shows the run Lost at once, when, which engine, then where it went on;
`cascade status` counts it carried on, not stranded, and the dead engine lists no live run;
a decision on the lost run is answered at once with where it went."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.rendering import render_watch
from cascade.interfaces import Message, status_filter, telemetry_filter
from cascade.interfaces.serving import StartRequest
from cascade.interfaces.summaries import decode_summary, placed_summary_filter
from cascade.reader import ReaderModel, RunView, subscribe_summaries
from cascade.testkit import MOSQUITTO_ONLY, Inbox, OwnBroker, SharedStore, skip_on_family

from .conftest import EngineProcess
from .test_carry_on import KEEPALIVE, _start, _step, _two_servers

# the CLI reads the default topic prefix: a mosquitto of the test's own holds nothing else
pytestmark = [
    skip_on_family(family, MOSQUITTO_ONLY.format(family=family)) for family in ("rabbitmq", "nats")
]
PREFIX = "cascade"


async def _cascade(broker: OwnBroker, *args: str) -> Result:
    """`cascade ARGS` on ``broker``, in a thread (the command runs its own event loop)."""
    where = ["--host", broker.host, "--port", str(broker.port)]
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, *where])


async def test_a_killed_servers_run_is_lost_in_every_view_and_says_where_it_went_on(
    own_broker: OwnBroker, engine_processes: list[EngineProcess], tmp_path: Path
) -> None:
    results = SharedStore("directory", str(tmp_path / "results"))
    servers = _two_servers(own_broker, PREFIX, results, engine_processes)
    async with servers as (victim, survivor, observer):
        model = ReaderModel(prefix=PREFIX)
        changed = asyncio.Event()

        def watched(run: RunView) -> None:
            changed.set()

        model.run_watchers.append(watched)
        await observer.subscribe(telemetry_filter(prefix=PREFIX), model.apply)
        await observer.subscribe(status_filter(PREFIX), model.apply)
        await subscribe_summaries(observer, model.apply)
        summaries = Inbox()
        await observer.subscribe(placed_summary_filter(PREFIX), summaries)
        request = StartRequest(id="nightly-1", workflow="etl", issued_by="ops", reason="nightly")
        await _start(observer, PREFIX, "server-a", request)
        lost = (await _step(victim, "running", 6))["run"]
        os.kill(victim.process.pid, signal.SIGKILL)
        killed = time.time()
        carried = (await survivor.expect("running", timeout=2 * KEEPALIVE + 10))["run"]
        while model.runs.get(lost) is None or model.runs[lost].carried_on_as is None:
            changed.clear()
            await asyncio.wait_for(changed.wait(), 10)
        run = model.runs[lost]
        assert (run.status, run.source, run.carried_on_by) == ("Lost", "server-a", "server-b")
        assert run.lost_at is not None
        assert run.lost_at - killed < 2 * KEEPALIVE + 2
        assert run.carried_on_as == carried

        # cascade watch: the lost run's rows
        console = Console(record=True, width=250)
        console.print(render_watch(model))
        text = console.export_text()
        lines = text[: text.index("Engines")].splitlines()

        def row_of(run_id: str) -> int:  # the line a run's rows start at (its id first)
            return next(i for i, line in enumerate(lines) if line.lstrip("│ ").startswith(run_id))

        lost_rows = "\n".join(lines[row_of(lost[:12]) : row_of(carried[:12])])
        assert "Lost" in lost_rows
        said = f"when its engine server-a went offline; carried on as {carried[:12]} at server-b"
        assert said in lost_rows
        assert "in flight" in lost_rows  # the step it was running when killed
        assert "running" not in lost_rows.lower()

        # cascade status: carried on, not stranded; the dead engine lists no live run
        def carries(message: Message) -> bool:
            said = decode_summary(message.raw)
            return any(listed.carried_on_from == lost for listed in said.listed)

        await summaries.until(carries, timeout=10)
        status = await _cascade(own_broker, "status", "--json")
        assert status.exit_code == 0, status.output
        fleet = json.loads(status.stdout)["fleet"]
        assert (fleet["stranded"], fleet["carried"]) == (0, 1), fleet
        engines = {engine["source"]: engine for engine in json.loads(status.stdout)["engines"]}
        assert engines["server-a"]["status"] == "offline"
        shown = await _cascade(own_broker, "status")
        dead = " ".join(line for line in shown.output.splitlines() if "server-a" in line)
        assert "live" not in dead

        # a decision on the lost run: at once, where it went
        started = time.monotonic()
        decided = await _cascade(own_broker, "retry", lost, "step", "--timeout", "10")
        took = time.monotonic() - started
        assert decided.exit_code == 1, decided.output
        assert f"carried on as {carried} at server-b: decide there" in decided.stderr
        assert "when its engine server-a went offline" in decided.stderr
        assert took < 5, took


async def test_a_killed_servers_run_nobody_carries_on_is_stranded_and_says_so(
    own_broker: OwnBroker, engine_processes: list[EngineProcess], tmp_path: Path
) -> None:
    """Served with ``on_engine_lost="none"``: the run stays lost. `cascade status` counts it
    stranded (no live run on the dead engine); a decision on it says no server is known to
    carry it on."""
    results = SharedStore("directory", str(tmp_path / "results"))
    servers = _two_servers(own_broker, PREFIX, results, engine_processes, "--policy", "none")
    async with servers as (victim, _survivor, observer):
        offline = Inbox()
        await observer.subscribe(status_filter(PREFIX), offline)
        request = StartRequest(id="nightly-2", workflow="etl", issued_by="ops", reason="nightly")
        await _start(observer, PREFIX, "server-a", request)
        lost = (await _step(victim, "running", 3))["run"]
        os.kill(victim.process.pid, signal.SIGKILL)
        await offline.until(lambda m: b'"offline"' in m.raw and b"server-a" in m.raw)
        status = await _cascade(own_broker, "status", "--json")
        assert status.exit_code == 0, status.output
        fleet = json.loads(status.stdout)["fleet"]
        assert (fleet["stranded"], fleet["carried"]) == (1, 0), fleet
        started = time.monotonic()
        decided = await _cascade(own_broker, "skip", lost, "step", "--timeout", "10")
        assert time.monotonic() - started < 5
        assert decided.exit_code == 1, decided.output
        # a new connection hears the will retained, stamped when its connection was made:
        # when it died is not known there
        said = f"run {lost} was lost when its engine server-a went offline; no server is known "
        assert said + "to carry it on" in decided.stderr
