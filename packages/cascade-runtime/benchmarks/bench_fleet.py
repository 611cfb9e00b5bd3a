"""Benchmark of a fleet: how fast a global pause and resume reach N engine processes.

Starts ``--engines`` engine processes (100 by default, 10 with ``--quick``),
each this script run again with ``--child``: an ``Engine(MqttConnector(host,
port, source_id="fleet-<i>"))`` running ``--concurrency`` (4) tasks at a
time of a workflow of tasks that each await 0.5 to 1.5 times
``--task-seconds`` (0.4; spread, so that starts are spread too): about 10
task starts a second per engine, so that 100 engines keep two cores about
half busy (the table prints how busy), which are then not what limits the
figures. Each child writes a JSON
line to its stdout once its engine runs tasks, when the engine held a task
back after the pause, and when it started one again; the parent reads
them. Times are ``time.time()`` (one machine, one clock).

Up to three scenarios, one table each:

A. One mosquitto: the engines and the controller on the same broker.
B. A bridge (``MosquittoBridge``): the engines on the edge broker, the pause,
   the resume and ``cascade status`` on the central one.
C. One RabbitMQ node with its MQTT plugin (``RabbitMQBroker``; not with
   ``--quick``, and only where rabbitmq-server is installed), where
   ``cascade status`` finds the engines by a roll call.

In each, once every engine runs tasks: ``cascade status --json`` (a
subprocess, interpreter start included) until it lists every engine online;
then a global pause (a retained ``Constraint.pause("global")`` at QoS 1 on
``constraint_topic("global", "pause")``, as ``cascade pause global``
publishes it), then its clearing (an empty retained payload on that topic, as
``cascade resume global``). Per engine, from the publish:

- ``pause -> applied (stopped)``: the engine applied the pause, so it
  starts no task from then on (a second subscription on the engine's own
  connector, made after the engine's, is called right after the engine's
  handler; it checks that ``engine.stats.accepted`` went up).
- ``pause -> last task start``: ``bench_engine.py``'s definition, the last
  task the engine still started before its first BLOCKED (0 when it started
  none after the publish): a lower bound of the moment it stopped, only as
  exact as the starts are dense (one every 100 ms per engine by default).
- ``pause -> first blocked``: ``bench_engine.py``'s "publish->blocked", the
  engine held a task back; a slot must free up first, so this comes up to
  about ``--task-seconds / --concurrency`` after the pause applied.
- ``resume -> task start``: the engine started a task again.

Each row gives p50, p99 and max over the engines that reported (the count is
printed). The aim: ``pause -> applied`` p99 <= 100 ms for 100 engines on one
mosquitto, every engine that ran reporting. Every child is ended (stdin
closed, then killed after a grace period) and every broker stopped, whatever
happens; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint, Message, constraint_topic, constraints_filter
from cascade.runtime import Engine, Event, TaskBlocked, TaskRunning, task
from cascade.testkit import (
    MosquittoBridge,
    MosquittoBroker,
    RabbitMQBroker,
    mosquitto_path,
    rabbitmq_server_path,
)

AIM_MS = 100.0
AIM_ENGINES = 100
GOLDEN = 0.6180339887  # spreads the tasks' durations evenly, so the slots fall out of step
BATCH = 10  # engines started at once; the next batch waits for their first task
ROWS = (
    "pause -> applied (stopped)",
    "pause -> last task start",
    "pause -> first blocked",
)
RESUME_ROW = "resume -> task start"
SCRIPT = str(Path(__file__).resolve())


# --- the child: one engine ---------------------------------------------------------------


def say(**fields: Any) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def child(args: argparse.Namespace) -> None:
    """Run one engine until stdin closes (the parent's signal) or ``--lifetime`` passes."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:  # a thread: returns at EOF, when the parent closes the pipe
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    last_start = 0.0
    blocked = False
    running = asyncio.Event()
    seen: dict[str, float | None] = {}  # "pause", "applied", "resume": when the process saw it

    def on_event(event: Event) -> None:
        nonlocal last_start, blocked
        if isinstance(event, TaskRunning):
            running.set()
            if blocked:  # the first start after the pause: resumed
                blocked = False
                say(kind="resumed", ts=event.ts, delivered=seen.get("resume"))
            last_start = event.ts
        elif isinstance(event, TaskBlocked) and not blocked and "resume" not in seen:
            blocked = True
            say(
                kind="paused",
                ts=event.ts,
                last_start=last_start,
                delivered=seen.get("pause"),
                applied=seen.get("applied"),
            )

    @task
    async def work(i: int) -> int:
        if not stop.is_set():  # 0.5 to 1.5 times --task-seconds, spread, so starts are too
            await asyncio.sleep(args.task_seconds * (0.5 + (i * GOLDEN) % 1.0))
        return i

    tasks = int(args.lifetime * args.concurrency / args.task_seconds) + 100
    connector = MqttConnector(args.host, args.port, source_id=args.source)
    engine = Engine(connector, max_concurrency=args.concurrency)
    accepted = 0

    def on_constraint(message: Message) -> None:
        # Subscribed after the engine's own subscription, so the connector calls this right
        # after the engine's handler (in subscription order, synchronously) has applied it.
        now = time.time()
        if message.payload.get("type") != "pause":
            seen.setdefault("resume", now)
        elif "pause" not in seen:
            seen["pause"] = now
            seen["applied"] = now if engine.stats.accepted > accepted else None

    async with connector:
        engine.events.subscribe(on_event)
        run = asyncio.create_task(engine.run([work(i) for i in range(tasks)]))
        started = asyncio.create_task(running.wait())
        stopped = asyncio.create_task(stop.wait())
        first = asyncio.FIRST_COMPLETED
        await asyncio.wait([started, stopped, run], timeout=args.lifetime, return_when=first)
        if running.is_set():  # the engine has subscribed to the constraints: subscribe after it
            accepted = engine.stats.accepted
            await connector.subscribe(constraints_filter(connector.topic_prefix), on_constraint)
            say(kind="ready", ts=time.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), args.lifetime)
        started.cancel()
        stopped.cancel()
        run.cancel()
        with contextlib.suppress(BaseException):
            await run
    say(kind="exit", ts=time.time())


# --- the parent: the fleet --------------------------------------------------------------


@dataclass
class Member:
    """One engine process and what it reported."""

    index: int
    process: asyncio.subprocess.Process
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        """Collect the child's lines until its stdout closes."""
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                self.reports.setdefault(report["kind"], report)
                self.changed.set()


class Fleet:
    """N engine processes on one broker; always ended by :meth:`close`."""

    def __init__(self, args: argparse.Namespace, host: str, port: int, log: IO[bytes]) -> None:
        self.args = args
        self.host = host
        self.port = port
        self.log = log
        self.members: list[Member] = []
        self.readers: list[asyncio.Task[None]] = []

    async def spawn(self, index: int) -> Member:
        command = [sys.executable, SCRIPT, "--child", "--host", self.host]
        command += ["--port", str(self.port), "--source", f"fleet-{index}"]
        command += ["--concurrency", str(self.args.concurrency)]
        command += ["--task-seconds", str(self.args.task_seconds)]
        command += ["--lifetime", str(self.args.lifetime)]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log
        )
        member = Member(index, process)
        self.members.append(member)
        self.readers.append(asyncio.create_task(member.read()))
        return member

    async def start(self, count: int, timeout: float) -> None:
        """Start ``count`` engines, ``BATCH`` at a time, each batch until its tasks run."""
        for first in range(0, count, BATCH):
            batch = [await self.spawn(i) for i in range(first, min(first + BATCH, count))]
            await self.wait(batch, "ready", timeout)

    async def wait(self, members: list[Member], kind: str, timeout: float) -> None:
        """Until every one of ``members`` (still alive) reported ``kind``, or ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for member in members:
            while kind not in member.reports and member.process.returncode is None:
                member.changed.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(member.changed.wait(), min(remaining, 0.5))

    def reported(self, kind: str) -> list[dict[str, Any]]:
        return [m.reports[kind] for m in self.members if kind in m.reports]

    async def close(self) -> None:
        """Close every child's stdin, wait a while, kill what is left."""
        for member in self.members:
            if member.process.stdin is not None:
                member.process.stdin.close()
        waits = [m.process.wait() for m in self.members]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), 20)
        for member in self.members:
            if member.process.returncode is None:
                member.process.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(m.process.wait() for m in self.members)), 10)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


@dataclass
class Result:
    """One scenario's figures."""

    name: str
    engines: int
    ready: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    status_s: float | None = None  # from all engines running to a status listing them all
    status_calls: int = 0
    status_online: int = 0
    busy: float | None = None  # the machine's CPU use (0-1) in the second before the pause
    wall_s: float = 0.0


async def status_online(host: str, port: int) -> int:
    """How many ``fleet-*`` engines one ``cascade status --json`` lists online."""
    command = [sys.executable, "-m", "cascade.cli", "status", "--json"]
    command += ["--host", host, "--port", str(port), "--timeout", "5"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return 0
    with contextlib.suppress(ValueError, KeyError, TypeError):
        engines = json.loads(output)["engines"]
        return sum(
            1 for e in engines if e["source"].startswith("fleet-") and e["status"] == "online"
        )
    return 0


async def scenario(
    name: str,
    args: argparse.Namespace,
    engines_at: tuple[str, int],
    control_at: tuple[str, int],
    log: IO[bytes],
) -> Result:
    """Start the fleet on ``engines_at``; status, pause and resume from ``control_at``."""
    result = Result(name, args.engines)
    began = time.monotonic()
    fleet = Fleet(args, *engines_at, log)
    controller = MqttConnector(*control_at, presence=False)
    try:
        await fleet.start(args.engines, timeout=30 + args.engines * 0.5)
        ready = [m for m in fleet.members if "ready" in m.reports]
        result.ready = len(ready)
        all_running = time.time()
        for _ in range(20):  # cascade status until it lists every engine online
            result.status_calls += 1
            result.status_online = await status_online(*control_at)
            if result.status_online >= result.ready:
                result.status_s = time.time() - all_running
                break
        await controller.connect()
        await asyncio.sleep(1.0)  # every engine in its steady state
        before = cpu_times()
        await asyncio.sleep(1.0)
        result.busy = busy_between(before, cpu_times())
        topic = constraint_topic("global", "pause")
        published = time.time()
        await controller.publish(topic, Constraint.pause("global"), qos=1, retain=True)
        await fleet.wait(ready, "paused", args.wait)
        await asyncio.sleep(0.5)
        resumed = time.time()
        await controller.publish(topic, b"", qos=1, retain=True)
        await fleet.wait(ready, "resumed", args.wait)
        paused = fleet.reported("paused")
        result.latencies = {
            ROWS[0]: [p["applied"] - published for p in paused if p["applied"] is not None],
            ROWS[1]: [max(0.0, p["last_start"] - published) for p in paused],
            ROWS[2]: [p["ts"] - published for p in paused],
            RESUME_ROW: [r["ts"] - resumed for r in fleet.reported("resumed")],
        }
    finally:
        with contextlib.suppress(Exception):
            await controller.publish(constraint_topic("global", "pause"), b"", qos=1, retain=True)
        with contextlib.suppress(Exception):
            await controller.disconnect()
        await fleet.close()
    result.wall_s = time.monotonic() - began
    return result


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of every CPU from /proc/stat; ``None`` where there is none."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = sum(fields[3:5])  # idle and iowait
    return sum(fields) - idle, sum(fields)


def busy_between(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of ``values``, in ms."""
    if len(values) == 1:
        return (values[0] * 1000,) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000, max(values) * 1000


def print_table(result: Result) -> None:
    print(f"\n{result.name}: {result.engines} engines started, {result.ready} ran tasks")
    columns = f"{'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'engines':>8}"
    print(f"{'per engine, from the publish':<30} {columns}")
    for row in (*ROWS, RESUME_ROW):
        values = result.latencies.get(row, [])
        if values:
            p50, p99, top = percentiles(values)
            print(f"{row:<30} {p50:9.1f} {p99:9.1f} {top:9.1f} {len(values):8d}")
        else:
            print(f"{row:<30} {'-':>9} {'-':>9} {'-':>9} {0:8d}")
    status = "never" if result.status_s is None else f"after {result.status_s:.2f} s"
    print(
        f"cascade status --json listed {result.status_online}/{result.ready} engines online "
        f"{status} ({result.status_calls} call(s))"
    )
    busy = "unknown" if result.busy is None else f"{result.busy:.0%}"
    print(
        f"CPU busy in the second before the pause: {busy} of {os.cpu_count()} cores; "
        f"scenario wall time {result.wall_s:.1f} s"
    )


def aim(result: Result) -> str:
    """The aim line: pause -> applied p99 <= AIM_MS, each of AIM_ENGINES engines reporting."""
    applied = result.latencies.get(ROWS[0], [])
    last = result.latencies.get(ROWS[1], [])
    line = f"pause p99 <= {AIM_MS:.0f} ms for {AIM_ENGINES} engines on one mosquitto"
    if not applied:
        return f"{line}: NOT met (no engine reported)"
    p99 = percentiles(applied)[1]
    met = p99 <= AIM_MS and len(applied) == result.ready
    judged = verdict(met) if result.ready >= AIM_ENGINES else f"not judged ({result.ready} engines)"
    also = f", pause -> last task start p99 {percentiles(last)[1]:.1f} ms" if last else ""
    return (
        f"{line}: {judged} (pause -> applied p99 {p99:.1f} ms over {len(applied)} of "
        f"{result.ready} engines{also})"
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


async def main(args: argparse.Namespace) -> None:
    started = time.monotonic()
    print(
        f"fleet of {args.engines} engine processes, {args.concurrency} tasks at a time each, "
        f"tasks of {args.task_seconds * 1000:.0f} ms"
    )
    with tempfile.TemporaryFile() as log:
        results: list[Result] = []
        with MosquittoBroker() as broker:
            address = (broker.host, broker.port)
            results.append(await scenario("A: one mosquitto", args, address, address, log))
        print_table(results[-1])
        with MosquittoBridge() as bridge:
            edge, centre = (
                (bridge.edge.host, bridge.edge.port),
                (bridge.centre.host, bridge.centre.port),
            )
            results.append(
                await scenario(
                    "B: engines on an edge, control on the centre", args, edge, centre, log
                )
            )
        print_table(results[-1])
        if not args.quick and rabbitmq_server_path() is not None:
            with RabbitMQBroker() as rabbit:
                address = (rabbit.host, rabbit.port)
                results.append(await scenario("C: one RabbitMQ node", args, address, address, log))
            print_table(results[-1])
        if any(r.ready < r.engines for r in results):
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            print(f"\nnot every engine ran; the children's stderr ends with:\n{tail}")
    print()
    print(aim(results[0]))
    print(f"benchmark wall time {time.monotonic() - started:.1f} s")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engines", type=int, default=None, help="engine processes (100)")
    parser.add_argument("--quick", action="store_true", help="10 engines: a smoke run")
    parser.add_argument("--concurrency", type=int, default=4, help="tasks at once per engine")
    parser.add_argument("--task-seconds", type=float, default=0.4, help="a task's mean await")
    parser.add_argument("--wait", type=float, default=15.0, help="longest wait for the reports")
    parser.add_argument("--lifetime", type=float, default=300.0, help="a child's longest life")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=1883, help=argparse.SUPPRESS)
    parser.add_argument("--source", default="fleet-0", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engines is None:
        args.engines = 10 if args.quick else 100
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.child:
        asyncio.run(child(arguments))
    elif mosquitto_path() is None:
        print("mosquitto is not installed: no fleet benchmark")
    else:
        asyncio.run(main(arguments))
