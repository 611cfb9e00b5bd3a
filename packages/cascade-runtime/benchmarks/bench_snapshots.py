"""Benchmark: what readers asking for a run's snapshot cost the run, and how often it answers.

One engine (MqttConnector, a private mosquitto on loopback) runs ``--tasks`` coroutine tasks
that each await 1 ms (at most 64 at once), ``--repeats`` times per row. Rows:

- ``none``: nobody asks (the child process listens all the same, as in every row: its
  share of the 2 cores is not the snapshots' cost);
- ``1,000 readers at once, every second``: a child process publishes ``--readers``
  snapshot requests for the run at once, as soon as it hears of the run, and again every
  second until it ends (each reader of Cascade asks a run at most once every 3 s: this is
  three times that, from a thousand readers);
- ``1 reader, 100 a second``: one reader asking all the time.

Printed per row: the run's wall time (median) and its ratio to ``none`` (target: at most
1.05), the answers the child received a second (the engine answers at most once a second,
whoever asks), the requests it sent, and the size of an answer. Snapshot answers are
counted by their first part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import textwrap
import time
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker, mosquitto_path

# The readers: one connector in a process of its own, asking for every run it hears of.
ASKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from cascade.connectors.mqtt import MqttConnector
    from cascade.interfaces import SnapshotRequest, snapshot_request_topic, telemetry_filter

    async def main(port, readers, every):
        runs, answers, sizes, sent = {}, 0, [], 0
        ended = asyncio.Event()

        def on_message(message):
            nonlocal answers
            body = message.payload.get("body", {})
            run_id = message.payload.get("run_id")
            if body.get("type") == "RunSnapshot" and body.get("part") == 1:
                answers += 1
                sizes.append(len(message.raw))
            elif body.get("event") == "ENGINE_STOPPED":
                ended.set()
            elif isinstance(run_id, str):
                runs.setdefault(run_id, time.monotonic())

        async with MqttConnector("127.0.0.1", port, presence=False, buffer_size=100_000) as c:
            await c.subscribe(telemetry_filter(), on_message)
            print("ready", flush=True)
            while not runs:
                await asyncio.sleep(0.001)
            (run_id,) = runs
            topic, request = snapshot_request_topic(run_id), SnapshotRequest(run_id=run_id)
            began = time.monotonic()
            while not ended.is_set():
                for _ in range(readers):
                    await c.publish(topic, request, qos=1)
                    sent += 1
                try:
                    await asyncio.wait_for(ended.wait(), every)
                except asyncio.TimeoutError:
                    pass
            seconds = time.monotonic() - began
            await asyncio.sleep(0.2)  # answers still on their way
            print(json.dumps({"answers": answers, "seconds": seconds, "sent": sent,
                              "size": statistics.median(sizes) if sizes else 0}), flush=True)

    import statistics
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
    """
)

ROWS = [("none", 0, 1.0), ("1,000 readers at once, every second", 1000, 1.0),
        ("1 reader, 100 a second", 1, 0.01)]  # fmt: skip


@task
async def await_1ms(i: int) -> int:
    await asyncio.sleep(0.001)
    return i


async def one_run(port: int, tasks: int, readers: int, every: float) -> tuple[float, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ASKER, str(port), str(readers), str(every),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"
    connector = MqttConnector("127.0.0.1", port, buffer_size=100_000)
    await connector.connect()
    engine = Engine(connector, max_concurrency=64, heartbeat_interval=None)
    target = [await_1ms(i) for i in range(tasks)]
    started = time.perf_counter()
    await engine.run(target)
    elapsed = time.perf_counter() - started
    await connector.disconnect()
    report = json.loads(await child.stdout.readline())
    await child.wait()
    return elapsed, report


async def main(port: int, tasks: int, repeats: int) -> None:
    print(f"{tasks:,} tasks awaiting 1 ms (64 at once), median of {repeats} runs per row")
    print(f"{'row':<38} {'wall s':>8} {'ratio':>7} {'answers/s':>10} {'asked':>8} {'answer':>9}")
    baseline = None
    for name, readers, every in ROWS:
        times, reports = [], []
        for _ in range(repeats):
            elapsed, report = await one_run(port, tasks, readers, every)
            times.append(elapsed)
            reports.append(report)
        wall = statistics.median(times)
        baseline = baseline or wall
        if readers:
            rate = statistics.median(r["answers"] / r["seconds"] for r in reports)
            asked = f"{statistics.median(r['sent'] for r in reports):,.0f}"
            size = f"{statistics.median(r['size'] for r in reports) / 1024:,.0f} KiB"
            rate_text = f"{rate:.2f}"
        else:
            rate_text, asked, size = "-", "-", "-"
        print(
            f"{name:<38} {wall:>8.3f} {wall / baseline:>7.3f} {rate_text:>10} {asked:>8} {size:>9}"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 tasks, 1 run per row")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.tasks, arguments.repeats = 2_000, 1
    return arguments


if __name__ == "__main__":
    arguments = parse()
    if mosquitto_path() is None:
        print("mosquitto is not installed: no snapshot benchmark")
    else:
        with MosquittoBroker(extra_config="set_tcp_nodelay true") as mosquitto:
            asyncio.run(main(mosquitto.port, arguments.tasks, arguments.repeats))
