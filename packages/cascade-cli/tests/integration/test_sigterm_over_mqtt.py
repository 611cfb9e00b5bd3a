"""An engine process stopped by SIGTERM, on a real mosquitto: `cascade status` (and the reader
model) shows it offline and last seen when it stopped, not when its connection began (the
broker's will, all that was left when SIGTERM killed the process at once, is stamped then). A
serving engine stops serving and exits 0; a script's run ends cancelled, saying why."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_filter, telemetry_filter
from cascade.reader import ReaderModel
from cascade.testkit import MosquittoBroker

SCRIPT = """\
import asyncio
import sys

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task


@task
async def forever() -> None:
    await asyncio.Event().wait()


async def main(mode: str) -> None:
    engine = Engine(MqttConnector({host!r}, {port}, source_id={source!r}))
    if mode == "serve":
        await engine.serve({{"forever": forever()}})
    else:
        await engine.run(forever())


asyncio.run(main(sys.argv[1]))
"""
RUNNING = 2.0  # seconds the engine lives before SIGTERM: its connection's start is that old


@pytest.mark.parametrize("mode", ["serve", "run"])
async def test_an_engine_stopped_by_sigterm_is_last_seen_when_it_stopped(
    mosquitto_broker: MosquittoBroker, tmp_path: Path, mode: str
) -> None:
    source = f"sigterm-{mode}"
    script = tmp_path / "engine.py"
    script.write_text(
        SCRIPT.format(host=mosquitto_broker.host, port=mosquitto_broker.port, source=source)
    )
    online, running, stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    def heard(message: Message) -> None:
        payload = message.payload
        if payload.get("source") == source and payload.get("status") == "online":
            online.set()
        body = payload.get("body")
        if payload.get("source") == source and isinstance(body, dict):
            if body.get("state") == "RUNNING":
                running.set()
            if body.get("event") == "ENGINE_STOPPED":
                stopped.set()

    async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port, presence=False) as tool:
        await tool.subscribe(status_filter(), heard)
        await tool.subscribe(telemetry_filter(), heard)
        engine = await asyncio.create_subprocess_exec(
            sys.executable, str(script), mode, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.wait_for(online.wait(), 30)
            if mode == "run":
                await asyncio.wait_for(running.wait(), 30)
            await asyncio.sleep(RUNNING)  # time passing, to tell its start from its stop
            killed = time.time()
            engine.send_signal(signal.SIGTERM)
            _, said = await asyncio.wait_for(engine.communicate(), 30)
        finally:
            if engine.returncode is None:
                engine.kill()
                await engine.wait()
        code, err = engine.returncode, said.decode()
        if mode == "run":
            await asyncio.wait_for(stopped.wait(), 10)  # its end was published
    if mode == "serve":
        assert code == 0, err
    else:
        assert code == 1, err
        assert "RunCancelledError" in err
        assert "the process got SIGTERM" in err

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    address = ["--host", mosquitto_broker.host, "--port", str(mosquitto_broker.port)]
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cascade.cli", "status", "--json", *address, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, status_err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, status_err.decode()
    (shown,) = [e for e in json.loads(out)["engines"] if e["source"] == source]
    assert (shown["status"], shown["reason"]) == ("offline", "shutdown")
    last_seen = datetime.fromisoformat(shown["last_seen"]).timestamp()
    assert killed - 0.5 <= last_seen <= time.time(), (killed, last_seen)

    model = ReaderModel()  # the reader's own view, from the retained status alone
    async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port, presence=False) as tool:
        seen = asyncio.Event()

        def take(message: Message) -> None:
            model.apply(message)
            if source in model.engines:
                seen.set()

        await tool.subscribe(status_filter(), take)
        await asyncio.wait_for(seen.wait(), 10)
    view = model.engines[source]
    assert not view.online
    assert view.last_seen is not None
    assert view.last_seen >= killed - 0.5
