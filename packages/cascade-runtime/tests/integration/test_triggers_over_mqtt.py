"""Triggers across a fleet on the shared broker of every family (mosquitto; RabbitMQ and NATS
with ``CASCADE_TEST_BROKER``): two servers of a trigger, one a process killed (SIGKILL) midway,
start one run per event between them, each naming its event; a paused trigger starts nothing.

mosquitto orders a topic's messages alike for every subscriber, so an event's claim alone
decides; RabbitMQ and a NATS cluster (each server on a node of its own) do not, so there the
servers share a results store, whose exclusive create takes each event's request id once
(docs/triggers.md, as docs/schedules.md says of slots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.control import Controller
from cascade.runtime import Engine, RunStarted, Trigger, task
from cascade.runtime.testing import eventually, serving
from cascade.testkit import BrokerEndpoint, broker_family

SERVER = """
import asyncio, json, logging, signal, sys
from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, RunStarted, Trigger, task

host, port, prefix, source = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
results = sys.argv[5] or None

def say(**fields):
    print(json.dumps(fields), flush=True)

class Said(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("serving "):
            say(ready=source)

@task(name="load")
def load(day: str = "any") -> str:
    return day

@task(name="summarise")
def summarise(source_run: str = "") -> str:
    return source_run

def etl(day: str = "any"):
    return load(day)

def report(source_run: str = ""):
    return summarise(source_run)

async def main():
    logger = logging.getLogger("cascade.runtime.serve")
    logger.addHandler(Said())
    logger.setLevel(logging.INFO)
    connector = MqttConnector(host, port, source_id=source, topic_prefix=prefix, keepalive=5)
    engine = Engine(connector, heartbeat_interval=None, results=results)
    def started(event):
        if isinstance(event, RunStarted) and event.origin is not None and event.origin.trigger:
            say(run=event.run_id, trigger=event.origin.trigger,
                followed=event.origin.followed_run, source=source,
                carried=event.origin.carried_on_from)
    engine.events.subscribe(started)
    triggers = {
        "report_after_etl": Trigger(after="etl", workflow="report",
                                    params=lambda event: {"source_run": event.run_id}),
        "on_deploy": Trigger(signal="deploys/approved", workflow="report"),
    }
    serving = asyncio.ensure_future(
        engine.serve({"etl": etl, "report": report}, triggers=triggers)
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    await asyncio.gather(serving, return_exceptions=True)

asyncio.run(main())
"""


@task(name="load")
def load(day: str = "any") -> str:
    return day


@task(name="summarise")
def summarise(source_run: str = "") -> str:
    return source_run


def etl(day: str = "any") -> Any:
    return load(day)


def report(source_run: str = "") -> Any:
    return summarise(source_run)


TRIGGERS = {
    "report_after_etl": Trigger(
        after="etl", workflow="report", params=lambda event: {"source_run": event.run_id}
    ),
    "on_deploy": Trigger(signal="deploys/approved", workflow="report"),
}


def _read(process: subprocess.Popen[str], into: list[dict[str, Any]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            into.append(json.loads(line))


def _store(tmp_path: Path) -> str:
    """A results store the servers share where the broker does not order one topic's
    messages alike for every subscriber; none on mosquitto (the claim alone decides)."""
    return "" if broker_family() == "mosquitto" else str(tmp_path / "results")


@contextlib.asynccontextmanager
async def _served(
    broker: BrokerEndpoint, prefix: str, source: str, store: str, node: int = 1
) -> AsyncIterator[tuple[Engine, list[RunStarted]]]:
    nodes = getattr(broker, "nodes", [broker])
    at = nodes[node % len(nodes)]
    connector = MqttConnector(at.host, at.port, source_id=source, topic_prefix=prefix)
    engine = Engine(connector, heartbeat_interval=None, results=store or None)
    async with serving(engine, {"etl": etl, "report": report}, triggers=TRIGGERS) as started:
        yield engine, started


@contextlib.asynccontextmanager
async def _controller(broker: BrokerEndpoint, prefix: str) -> AsyncIterator[Controller]:
    async with MqttConnector(broker.host, broker.port, topic_prefix=prefix) as ops:
        yield Controller(ops, issued_by="alice", timeout=10)


async def _until_served(control: Controller, test: Any, timeout: float = 30) -> None:
    """Until the announcements heard pass ``test`` (of the list of them)."""

    async def asked() -> None:
        while not test(await control.served()):  # noqa: ASYNC110  # each ask is a roll call
            await asyncio.sleep(0.1)

    await asyncio.wait_for(asked(), timeout)


def _triggered(started: list[RunStarted], trigger: str) -> list[RunStarted]:
    """The runs ``trigger`` started, but their carry-ons (which keep their origin)."""
    return [
        r
        for r in started
        if r.origin is not None and r.origin.trigger == trigger and r.origin.carried_on_from is None
    ]


async def test_two_servers_one_killed_start_one_report_per_etl_run_and_one_per_signal(
    mqtt_broker: BrokerEndpoint, prefix: str, tmp_path: Path
) -> None:
    """3 etl runs give exactly 3 report runs between two servers, each naming its etl run,
    though one server (a process) is killed after the first; one signal gives one run."""
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    store = _store(tmp_path)
    nodes = getattr(mqtt_broker, "nodes", [mqtt_broker])
    said: list[dict[str, Any]] = []
    process = subprocess.Popen(  # noqa: ASYNC220  # started once, before anything is awaited
        [sys.executable, str(script), str(nodes[0].host), str(nodes[0].port), prefix, "srv-0",
         store],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )  # fmt: skip
    reader = threading.Thread(target=_read, args=(process, said), daemon=True)
    reader.start()
    try:
        async with (
            _served(mqtt_broker, prefix, "srv-1", store) as (_engine, started),
            _controller(mqtt_broker, prefix) as control,
        ):
            await eventually(lambda: any("ready" in s for s in said), timeout=60)
            # both announced: both hear every run end from now on
            await _until_served(control, lambda v: {s.source for s in v} == {"srv-0", "srv-1"})
            etl_runs = [(await control.start("etl", {"day": "mon"}, on="srv-0")).run_id]

            def reports() -> list[str]:
                """The etl runs the reports followed (the carry-on of a report the killed
                server ran is that report still, not counted again: docs/durability.md)."""
                here = [r.origin.followed_run for r in _triggered(started, "report_after_etl")]  # type: ignore[union-attr]
                there = [
                    s["followed"]
                    for s in said
                    if s.get("trigger") == "report_after_etl" and s.get("carried") is None
                ]
                return [*here, *there]

            await eventually(lambda: len(reports()) == 1, timeout=30)
            process.kill()  # SIGKILL midway: the broker's will says it is gone
            process.wait(timeout=15)
            for day in ("tue", "wed"):
                etl_runs.append((await control.start("etl", {"day": day}, on="srv-1")).run_id)
            await eventually(lambda: len(reports()) == 3, timeout=30)
            signal = f"{prefix}/signal/local/default/deploys/approved"
            await control.connector.publish(signal, {"id": "d1"}, qos=1)
            await eventually(lambda: len(_triggered(started, "on_deploy")) == 1, timeout=30)
            assert None not in etl_runs, etl_runs
            assert sorted(reports()) == sorted(map(str, etl_runs)), (reports(), etl_runs, said)
            assert len(_triggered(started, "on_deploy")) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()


async def test_a_paused_trigger_starts_nothing_on_a_real_broker(
    mqtt_broker: BrokerEndpoint, prefix: str, tmp_path: Path
) -> None:
    """cascade pause trigger:report_after_etl: an etl run's end starts no report, said and
    counted at both servers; resumed, the next does."""
    store = _store(tmp_path)
    async with (
        _served(mqtt_broker, prefix, "srv-a", store, node=0) as (one, first),
        _served(mqtt_broker, prefix, "srv-b", store, node=1) as (two, second),
        _controller(mqtt_broker, prefix) as control,
    ):
        await _until_served(control, lambda v: {s.source for s in v} == {"srv-a", "srv-b"})
        await control.pause("trigger:report_after_etl", reason="db migration")

        def paused(views: list[Any]) -> bool:
            return all(t.paused for v in views for t in v.announcement.triggers
                       if t.name == "report_after_etl")  # fmt: skip

        await _until_served(control, paused)
        await control.start("etl", {})
        await eventually(
            lambda: one.stats.trigger_events_paused + two.stats.trigger_events_paused == 2,
            timeout=30,
        )
        assert _triggered(first + second, "report_after_etl") == []
        await control.resume("trigger:report_after_etl")
        await _until_served(control, lambda views: not any(
            t.paused for v in views for t in v.announcement.triggers))  # fmt: skip
        again = await control.start("etl", {})
        await eventually(lambda: len(_triggered(first + second, "report_after_etl")) == 1, 30)
        (run,) = _triggered(first + second, "report_after_etl")
        assert run.origin is not None
        assert run.origin.followed_run == again.run_id
