"""Engines that end one after another on a real mosquitto: a process's next engine announces
itself without a stale-will warning, clean ends fold into a count a while later, and an
engine whose process died stays listed."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message, status_filter
from cascade.reader import ENDED_FOLD_AFTER, ReaderModel
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker


@task
def one() -> int:
    return 1


async def test_engines_run_one_after_another_in_a_process_say_no_stale_will(
    mosquitto_broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    source = f"script-{uuid.uuid4().hex[:8]}"  # what host-pid is to every engine of a process
    with caplog.at_level(logging.WARNING, "cascade.connectors.mqtt"):
        for _ in range(3):
            connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port,
                                      source_id=source)  # fmt: skip
            assert await Engine(connector=connector).run(one()) == 1
    assert [r.getMessage() for r in caplog.records] == []


_DIES = """
import asyncio, sys
from cascade.connectors.mqtt import MqttConnector

async def main():
    connector = MqttConnector("127.0.0.1", int(sys.argv[1]), source_id=sys.argv[2])
    await connector.connect(require=True)
    await connector.flush(5)
    print("online", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_clean_ends_fold_away_and_a_dead_engine_stays(
    mosquitto_broker: MosquittoBroker,
) -> None:
    tag = uuid.uuid4().hex[:8]
    ended = [f"ended-{tag}-{n}" for n in range(3)]
    for source in ended:  # three runs of a script: a source each, each ended cleanly
        connector = MqttConnector(mosquitto_broker.host, mosquitto_broker.port, source_id=source)
        assert await Engine(connector=connector).run(one()) == 1
    dead = f"dead-{tag}"
    with subprocess.Popen(  # noqa: ASYNC220 - a process of its own, to kill
        [sys.executable, "-c", _DIES, str(mosquitto_broker.port), dead],
        stdout=subprocess.PIPE, text=True,
    ) as child:  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "online"
        child.kill()  # its will: a connection lost, not an end
    later = ReaderModel(clock=lambda: time.time() + ENDED_FOLD_AFTER + 5)
    ours = {*ended, dead}
    heard = asyncio.Event()

    def on_status(message: Message) -> None:
        later.apply(message)
        engines = later.engines
        if all(s in engines for s in ours) and not engines[dead].online:
            heard.set()

    async with MqttConnector(mosquitto_broker.host, mosquitto_broker.port,
                             presence=False) as reader:  # fmt: skip
        await reader.subscribe(status_filter(), on_status)
        await asyncio.wait_for(heard.wait(), 10)
    now = later.engine_rows(offline_max_age=3600)
    shown = [e.source for e in now.shown if e.source in ours]
    folded = [e.source for e in now.folded if e.source in ours]
    assert (shown, folded) == ([dead], ended)
    assert later.engines[dead].status.reason is None  # type: ignore[union-attr]
