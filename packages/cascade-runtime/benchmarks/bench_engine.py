"""Benchmark of cascade-runtime: what telemetry costs a run, and how fast a pause bites.

Prints two tables:

1. Wall time of a fan-out of ``--tasks`` no-op tasks (median and minimum of
   ``--repeats`` runs) per connector, and its ratio to the run without a
   connector (the minimum is the figure least disturbed by other load).
2. Pause latency per connector (p50 and max over ``--cycles`` pause/resume
   cycles during one run): from publishing a global pause to the engine
   deferring a task (first BLOCKED), from publishing it to the last task the
   engine still started, and from publishing the resume to the next task start.

Connectors come from :func:`connector_factories`, called afresh for every
measurement: a name and a zero-argument callable making a new, unconnected
connector; the latency scenario calls it twice (engine and controller), and
both must reach the same broker. ``latency=False`` marks connectors that cannot
carry the controller's messages.
The ``mqtt`` rows use MqttConnector against a private mosquitto on loopback
(skipped where mosquitto is not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable

from cascade.connectors.mqtt import MqttConnector
from cascade.connectors.mqtt.testing import MosquittoBroker, mosquitto_path
from cascade.interfaces import Connector, Constraint, Payload, constraint_topic
from cascade.interfaces.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import Engine, Event, TaskEvent, task

ConnectorFactory = Callable[[], Connector]


class NullConnector(InMemoryConnector):
    """Drops every publish at once: isolates the runtime's own telemetry cost."""

    async def publish(
        self, topic: str, payload: Payload, qos: int = 0, retain: bool = False
    ) -> None:
        return None


def connector_factories(
    mqtt: tuple[str, int] | None = None,
) -> dict[str, tuple[ConnectorFactory | None, bool]]:
    """name -> (factory, measure latency); factory ``None`` is the run without a connector.

    Called once per measurement, so each gets a fresh in-memory broker.
    ``mqtt`` is the address of a live broker for the MqttConnector rows.
    """
    broker = InMemoryBroker()
    factories: dict[str, tuple[ConnectorFactory | None, bool]] = {
        "none": (None, False),
        "null (publish discards)": (lambda: NullConnector(presence=False), False),
        "in-memory": (lambda: InMemoryConnector(broker, presence=False), True),
    }
    if mqtt is not None:
        host, port = mqtt
        factories["mqtt (mosquitto)"] = (lambda: MqttConnector(host, port), True)
    return factories


@task
async def noop(i: int) -> int:
    return i


async def fanout_time(factory: ConnectorFactory | None, tasks: int) -> float:
    """Seconds for one run of ``tasks`` independent no-op tasks (connector connected before)."""
    connector = factory() if factory is not None else None
    if connector is not None:
        await connector.connect()
    engine = Engine(connector, max_concurrency=64)
    target = [noop(i) for i in range(tasks)]
    gc.collect()
    started = time.perf_counter()
    await engine.run(target)
    elapsed = time.perf_counter() - started
    if connector is not None:
        await connector.disconnect()
    return elapsed


async def pause_latencies(factory: ConnectorFactory, cycles: int) -> dict[str, list[float]]:
    """Pause and resume ``cycles`` times during one run; the latencies of each, in seconds."""
    engine_connector, controller = factory(), factory()
    await controller.connect()
    engine = Engine(engine_connector, max_concurrency=8, heartbeat_interval=None)
    stop = False
    blocked = asyncio.Event()
    resumed = asyncio.Event()
    starts: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, TaskEvent):
            if event.state == "RUNNING":
                starts.append(time.perf_counter())
                resumed.set()
            elif event.state == "BLOCKED":
                blocked.set()

    engine.events.subscribe(on_event)

    @task
    async def work(i: int) -> int:
        if not stop:
            await asyncio.sleep(0.002)
        return i

    run = asyncio.create_task(engine.run([work(i) for i in range(50_000)]))
    topic = constraint_topic("global", "pause")
    result: dict[str, list[float]] = {"effect": [], "last_start": [], "resume": []}
    await resumed.wait()
    for _ in range(cycles):
        await asyncio.sleep(0.01)
        blocked.clear()
        published = time.perf_counter()
        await controller.publish(topic, Constraint.pause("global"), qos=1, retain=True)
        await blocked.wait()
        result["effect"].append(time.perf_counter() - published)
        await asyncio.sleep(0.02)  # let tasks that were already running finish
        result["last_start"].append(max(0.0, max(starts) - published))
        resumed.clear()
        published = time.perf_counter()
        await controller.publish(topic, b"", qos=1, retain=True)
        await resumed.wait()
        result["resume"].append(time.perf_counter() - published)
    stop = True
    await run
    await controller.disconnect()
    return result


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.3f} {max(values) * 1000:8.3f}"


async def main(args: argparse.Namespace, mqtt: tuple[str, int] | None) -> None:
    names = list(connector_factories(mqtt))
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        await fanout_time(connector_factories(mqtt)[name][0], min(args.tasks, 1000))
    for _ in range(args.repeats):  # interleaved, so that drift hits every connector alike
        for name in names:
            times[name].append(await fanout_time(connector_factories(mqtt)[name][0], args.tasks))
    print(f"\nfan-out of {args.tasks} no-op tasks, median of {args.repeats} runs")
    print(f"{'connector':<26} {'median s':>9} {'ratio':>6} {'min s':>9} {'ratio':>6}")
    baseline = statistics.median(times[names[0]])
    fastest = min(times[names[0]])
    for name in names:
        median, best = statistics.median(times[name]), min(times[name])
        print(
            f"{name:<26} {median:9.4f} {median / baseline:6.2f} {best:9.4f} {best / fastest:6.2f}"
        )
    print(f"\npause latency over {args.cycles} cycles, ms (p50 max)")
    header = ("connector", "publish->blocked", "publish->last start", "resume->start")
    print(f"{header[0]:<26} {header[1]:>17} {header[2]:>19} {header[3]:>17}")
    for name in names:
        factory, measure = connector_factories(mqtt)[name]
        if factory is None or not measure:
            continue
        lat = await pause_latencies(factory, args.cycles)
        effect, last, resume = ms(lat["effect"]), ms(lat["last_start"]), ms(lat["resume"])
        print(f"{name:<26} {effect:>17} {last:>19} {resume:>17}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=20)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if mosquitto_path() is None:
        print("mosquitto is not installed: no MqttConnector rows")
        asyncio.run(main(arguments, None))
    else:
        with MosquittoBroker() as mosquitto:
            asyncio.run(main(arguments, (mosquitto.host, mosquitto.port)))
