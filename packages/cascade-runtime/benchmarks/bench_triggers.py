"""Benchmark: what a trigger adds to a run's start (docs/triggers.md).

Two servers of ``etl`` and ``report`` on a private mosquitto (the in-memory broker where
mosquitto is not installed), each with the triggers ``report_after_etl`` (after ``etl``
Succeeded) and ``on_go`` (a signal), and a requester. Three latencies, each to the
``RunStarted`` of the run it starts, medians and 95th percentiles of ``--runs``:

1. **start request**: a ``StartRequest`` published to one server (its addressed topic) → the
   run began (the baseline: a request's hop to a server, its admission and the run's start);
2. **after a run**: the ``etl`` run's ``RunFinished`` at its server → the ``report`` run began
   (its end said on the server's ``ended`` topic, heard by both servers, the event claimed
   once at the broker, admitted as a start);
3. **on a signal**: the signal published → the run began (heard by both, claimed once).

What a trigger adds is the claim's round trip (a retained publish at QoS 1 heard back) on top
of the hop that carries the event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.control import Controller
from cascade.interfaces import Connector
from cascade.interfaces.serving import StartRequest, addressed_start_topic
from cascade.runtime import Engine, Event, RunFinished, RunStarted, Trigger, task
from cascade.runtime.testing import serving
from cascade.testkit import MosquittoBroker, mosquitto_path


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
    "on_go": Trigger(signal="go", workflow="report", max_per_minute=100_000),
}


@contextlib.contextmanager
def broker_of() -> Iterator[Any]:
    if mosquitto_path() is None:
        yield InMemoryBroker()
        return
    with MosquittoBroker() as broker:
        yield broker


def connector(broker: Any, source: str, prefix: str) -> Connector:
    if isinstance(broker, InMemoryBroker):
        return InMemoryConnector(broker, source_id=source, topic_prefix=prefix)
    from cascade.connectors.mqtt import MqttConnector

    return MqttConnector(broker.host, broker.port, source_id=source, topic_prefix=prefix)


class Marks:
    """When each run started and ended, by run id; and each triggered run by its event."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.followed: dict[str, float] = {}  # followed run -> its report's start
        self.signalled: dict[str, float] = {}  # signal id -> its run's start
        self.wake = asyncio.Event()

    def __call__(self, event: Event) -> None:
        now = time.perf_counter()
        if isinstance(event, RunStarted):
            self.started[event.run_id] = now
            origin = event.origin
            if origin is not None and origin.followed_run:
                self.followed[origin.followed_run] = now
            elif origin is not None and origin.trigger == "on_go":
                self.signalled[origin.trigger_event or ""] = now
        elif isinstance(event, RunFinished):
            self.finished[event.run_id] = now
        self.wake.set()

    async def until(self, test: Any) -> None:
        while not test():
            self.wake.clear()
            await asyncio.wait_for(self.wake.wait(), 30)


@contextlib.asynccontextmanager
async def servers(broker: Any, prefix: str, marks: Marks) -> AsyncIterator[Controller]:
    engines = [
        Engine(connector(broker, f"srv-{i}", prefix), heartbeat_interval=None) for i in range(2)
    ]
    for engine in engines:
        engine.events.subscribe(marks)
    workflows = {"etl": etl, "report": report}
    async with (
        serving(engines[0], workflows, triggers=TRIGGERS),
        serving(engines[1], workflows, triggers=TRIGGERS),
    ):
        ops = connector(broker, "ops", prefix)
        await ops.connect()
        control = Controller(ops, issued_by="bench", timeout=10)
        try:
            while len(await control.served()) < 2:  # noqa: ASYNC110  # each ask is a roll call
                await asyncio.sleep(0.05)
            yield control
        finally:
            await ops.disconnect()


async def measure(broker: Any, runs: int) -> dict[str, list[float]]:
    marks = Marks()
    found: dict[str, list[float]] = {"start request": [], "after a run": [], "on a signal": []}
    prefix = f"bench-{time.time_ns()}"
    addressed = addressed_start_topic("local", "default", "report", "srv-0", prefix)
    async with servers(broker, prefix, marks) as control:
        for n in range(runs):
            request = StartRequest(
                id=f"direct-{n}", workflow="report", params={"source_run": f"direct-{n}"}
            )
            count = len(marks.started)
            sent = time.perf_counter()
            await control.connector.publish(addressed, request, qos=1)
            await marks.until(lambda count=count: len(marks.started) > count)
            found["start request"].append(max(marks.started.values()) - sent)
            reply = await control.start("etl", {"day": str(n)})
            etl_run = reply.run_id
            assert etl_run is not None, reply.error
            await marks.until(lambda run=etl_run: run in marks.followed)
            ended = marks.finished[etl_run]
            found["after a run"].append(marks.followed[etl_run] - ended)
            signal = f"{prefix}/signal/local/default/go"
            said = f"signal go s{n}"
            sent = time.perf_counter()
            await control.connector.publish(signal, {"id": f"s{n}"}, qos=1)
            await marks.until(lambda said=said: said in marks.signalled)
            found["on a signal"].append(marks.signalled[said] - sent)
    return found


def main(arguments: argparse.Namespace) -> None:
    with broker_of() as broker:
        where = "the in-memory broker" if isinstance(broker, InMemoryBroker) else "mosquitto"
        found = asyncio.run(measure(broker, arguments.runs))
    print(f"\nwhat starts a run, two servers on {where}, {arguments.runs} runs each (ms)")
    print(f"{'start':<16} {'median':>8} {'p95':>8} {'added':>8}")
    base = statistics.median(found["start request"])
    for name, values in found.items():
        values = sorted(values)
        median = statistics.median(values)
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        added = "" if name == "start request" else f"{(median - base) * 1e3:+8.2f}"
        print(f"{name:<16} {median * 1e3:>8.2f} {p95 * 1e3:>8.2f} {added:>8}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 runs")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.runs = 10
    return arguments


if __name__ == "__main__":
    main(parse(sys.argv[1:]))
