"""An engine's burst on a healthy broker: 100,000 no-op coroutine tasks, nothing dropped.

Each run is a fresh child process (so that its peak RSS is its own): an Engine runs
``--tasks`` no-op coroutine tasks, with no connector (the baseline) or with an
MqttConnector to a private loopback mosquitto. Printed per row: the runs in which the
connector dropped nothing (``stats.dropped`` and ``stats.buffered`` both 0 once ``run()``
has returned), the events the broker confirmed (``stats.published``, median), the run's wall time
(median, connect and final flush included) and the peak RSS the run added over the
process's RSS before it (median, from ``/proc/self/status``: Linux only).

Targets (issue 23): 0 dropped in 10 of 10 runs; peak RSS at most the baseline's + 20 MiB.

    python packages/cascade-runtime/benchmarks/bench_burst.py [--tasks N] [--runs K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, task
from cascade.testkit import MosquittoBroker, mosquitto_path

_MIB = 1024 * 1024


@task
async def noop(i: int) -> int:
    return i


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


async def _child(tasks: int, address: str | None) -> dict[str, float]:
    """One run in this process; what it dropped, how long it took, the peak RSS it added."""
    connector = None
    if address is not None:
        host, port = address.rsplit(":", 1)
        connector = MqttConnector(host, int(port), source_id="burst")
    engine = Engine(connector, heartbeat_interval=None)
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    await engine.run([noop(i) for i in range(tasks)])
    seconds = time.perf_counter() - start
    stats = connector.stats if connector is not None else None
    return {
        "seconds": seconds,
        "dropped": (stats.dropped + stats.buffered) if stats is not None else 0,
        "published": stats.published if stats is not None else 0,
        "rss_added": (_status_kib("VmHWM") - before) * 1024,
    }


def _one_run(tasks: int, broker: MosquittoBroker | None) -> dict[str, float]:
    """One run in a child process of its own."""
    address = f"{broker.host}:{broker.port}" if broker is not None else "-"
    child = subprocess.run(
        [sys.executable, __file__, "--child", address, "--tasks", str(tasks)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(child.stdout)
    return result


def main(arguments: argparse.Namespace) -> None:
    if mosquitto_path() is None:
        print("mosquitto is not installed: no burst table")
        return
    events = 2 * arguments.tasks + 2  # RUNNING and COMPLETED per task, the run's start and end
    with MosquittoBroker() as broker:
        results: dict[str, list[dict[str, float]]] = {"none": [], "MqttConnector": []}
        for index in range(arguments.runs):  # interleaved, so that drift hits both rows alike
            results["none"].append(_one_run(arguments.tasks, None))
            results["MqttConnector"].append(_one_run(arguments.tasks, broker))
            if sys.stderr.isatty():
                print(f"\rrun {index + 1}/{arguments.runs}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    print(f"\n{arguments.tasks:,} no-op coroutine tasks ({events:,} events), {arguments.runs} runs")
    header = f"{'connector':<15} {'0 dropped':>10} {'published':>12} {'wall s':>8} {'RSS +MiB':>9}"
    print(header)
    baseline_rss = statistics.median(r["rss_added"] for r in results["none"]) / _MIB
    for name, runs in results.items():
        clean = sum(1 for r in runs if r["dropped"] == 0)
        published = (
            f"{statistics.median(r['published'] for r in runs):,.0f}" if name != "none" else "-"
        )
        wall = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["rss_added"] for r in runs) / _MIB
        print(f"{name:<15} {f'{clean}/{len(runs)}':>10} {published:>12} {wall:8.2f} {rss:9.1f}")
    connected = results["MqttConnector"]
    clean = sum(1 for r in connected if r["dropped"] == 0)
    worst = max(r["dropped"] for r in connected)
    added = statistics.median(r["rss_added"] for r in connected) / _MIB - baseline_rss
    print(
        f"\n0 dropped in every run: {clean}/{len(connected)} (most dropped in one: {worst:,.0f}) "
        f"{'met' if clean == len(connected) else 'NOT met'}"
    )
    print(
        f"peak RSS over the no-connector run <= 20 MiB: {added:+.1f} MiB "
        f"{'met' if added <= 20 else 'NOT met'}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="10,000 tasks, 3 runs")
    parser.add_argument("--child", metavar="HOST:PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.tasks, arguments.runs = 10_000, 3
    return arguments


if __name__ == "__main__":
    arguments = parse()
    if arguments.child is not None:
        address = None if arguments.child == "-" else arguments.child
        print(json.dumps(asyncio.run(_child(arguments.tasks, address))))
    else:
        main(arguments)
