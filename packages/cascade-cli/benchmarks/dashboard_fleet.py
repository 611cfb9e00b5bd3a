"""A fleet in front of `cascade dashboard`: a base revision's and this tree's side by side.

``bench_dashboard.py --fleet ENGINES --rate EVENTS`` runs this: a feeder process publishes
ENGINES engines' retained ``online`` statuses, then their runs (a start, RUN_TASKS tasks each
started and completed, an end; 32-hex run ids) round-robin at EVENTS messages per second, on a
private mosquitto. Against that one fleet, in rounds, a dashboard process of the base revision
(its ``cascade-cli`` sources from ``git archive``, first on ``PYTHONPATH``) and one of this tree
each serve one page (or ``--pages`` pages) following its stream as the page of that code asks
for it: the runs list, and with ``--open-run`` a run opened. Meanwhile ``/api/state`` is asked
once a second, whole and (this tree) a page of 25 runs and engines. Printed: the medians over
the rounds of the stream's bytes per second a page gets, ``/api/state``'s size and latency, the
dashboard's CPU share (of one core), the events it took in per second, and its CPU per 10,000
events/s taken in (what a busy machine lets the feeder send varies by round). Linux only.

And, in a process of each code with no broker (the latency under a fleet is mostly how busy
the machine is): ``/api/state``'s time, whole and paged, on a model holding ENGINES engines and
a run of each, a few messages folded in before each request so that every answer is built anew.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx

RUN_TASKS = 200
TICK = 0.01  # the feeder publishes rate * TICK messages every TICK seconds
PAGE = 25  # the rows of a page, as the page asks by default
PER_ADDRESS = 8  # streams the dashboard allows from one address without the token
ROOT = Path(__file__).resolve().parents[3]


def envelope(engine: int, run_id: str, ts: str, body: dict[str, Any]) -> bytes:
    """One message of engine ``engine`` about ``run_id``, stamped ``ts``."""
    return json.dumps({
        "v": "1.0", "ts": ts, "run_id": run_id, "org_id": "local", "project_id": f"p{engine % 7}",
        "source": f"engine-{engine:05d}", "body": body,
    }).encode()  # fmt: skip


def feed_fleet(port: int, engines: int, rate: int) -> None:
    """The feeder process: ``engines`` engines' statuses, then their runs, until killed."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-fleet-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    now = datetime.now(timezone.utc).isoformat()
    for engine in range(engines):
        source = f"engine-{engine:05d}"
        status = {"status": "online", "source": source, "session": 1, "ts": now}
        client.publish(f"cascade/status/{source}", json.dumps(status), qos=1, retain=True)
    runs = [0] * engines
    step = [0] * engines  # 0: the start, 1..2*RUN_TASKS: the tasks, then the end
    per_tick = max(1, int(rate * TICK))
    start, sent, engine = time.perf_counter(), 0, 0
    while True:
        ts = datetime.now(timezone.utc).isoformat()
        for _ in range(per_tick):
            engine = (engine + 1) % engines
            run_id = f"{engine:08x}{runs[engine]:024x}"
            n = step[engine]
            if n == 0:
                body: dict[str, Any] = {"type": "LifecycleEvent", "event": "ENGINE_STARTED",
                                        "tasks": RUN_TASKS}  # fmt: skip
            elif n > 2 * RUN_TASKS:
                body = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"}
                runs[engine] += 1
                n = -1
            else:
                task_n, done = divmod(n - 1, 2)
                state = "COMPLETED" if done else "RUNNING"
                name = f"step_{task_n % 17}"
                body = {"type": "TaskStateEvent", "task_id": f"t{task_n}", "task_name": name,
                        "state": state, "duration_ms": 1.5}  # fmt: skip
            step[engine] = n + 1
            topic = f"cascade/telemetry/local/p{engine % 7}/{run_id}/events"
            client.publish(topic, envelope(engine, run_id, ts, body), qos=0)
        sent += per_tick
        delay = start + sent / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


async def state_cost(engines: int, samples: int = 30) -> dict[str, float]:
    """``/api/state``'s median time (ms) and size (KB), whole and a page of it, in process."""
    from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
    from cascade.dashboard import DashboardHub, DashboardSettings, create_app
    from cascade.interfaces import Message

    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    await hub.start()
    ts = datetime.now(timezone.utc).isoformat()

    def fold(engine: int, step: int) -> None:
        run_id = f"{engine:08x}{0:024x}"
        body = {"type": "TaskStateEvent", "task_id": f"t{step}", "task_name": "step",
                "state": "RUNNING", "duration_ms": 1.5}  # fmt: skip
        payload = json.loads(envelope(engine, run_id, ts, body))
        hub.model.apply(Message(f"cascade/telemetry/local/p{engine % 7}/{run_id}/events", payload))

    for engine in range(engines):
        source = f"engine-{engine:05d}"
        status = {"status": "online", "source": source, "session": 1, "ts": ts}
        hub.model.apply(Message(f"cascade/status/{source}", status))
        fold(engine, 0)
    got: dict[str, float] = {}
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token=None)))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        for name, params in (("whole", {}), ("paged", {"limit": "25", "engines_limit": "25"})):
            times, size = [], 0
            for n in range(samples):
                for engine in range(0, engines, max(1, engines // 50)):
                    fold(engine, n + 1)  # the fleet moves on: no answer is built from a cache
                started = time.perf_counter()
                answer = await http.get("/api/state", params=params)
                times.append((time.perf_counter() - started) * 1000)
                size = len(answer.content)
            got[f"{name}_ms"], got[f"{name}_kb"] = statistics.median(times), size / 1024
    await hub.stop()
    return got


def measure_state_cost(engines: int, baseline: Path | None) -> dict[str, float]:
    """:func:`state_cost` in a process of the base's code (``baseline``) or this tree's."""
    env = {**os.environ, **({"PYTHONPATH": str(baseline)} if baseline else {})}
    script = Path(__file__).with_name("bench_dashboard.py")
    command = [sys.executable, str(script), "--state-cost", str(engines)]
    printed = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    costs: dict[str, float] = json.loads(printed.stdout.splitlines()[-1])
    return costs


def start_feeder(port: int, engines: int, rate: int) -> subprocess.Popen[bytes]:
    """The feeder process (:func:`feed_fleet`), started through ``bench_dashboard.py``."""
    script = Path(__file__).with_name("bench_dashboard.py")
    command = [sys.executable, str(script), "--feed-fleet", str(port), str(engines), str(rate)]
    return subprocess.Popen(command)


def baseline_sources(revision: str) -> Path:
    """``packages/cascade-cli/src`` of ``revision``, extracted to a temporary folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "packages/cascade-cli/src"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    where = Path(tempfile.mkdtemp(prefix="cascade-baseline-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where / "packages" / "cascade-cli" / "src"


def stream_params(variant: str, run_id: str | None) -> dict[str, str]:
    """What the page of ``variant``'s code asks its stream for."""
    params = {"run": run_id} if run_id else {}
    if variant == "baseline":
        return params
    return {**params, "since": "0", "limit": str(PAGE), "engines_limit": str(PAGE)}


async def follow(url: str, params: dict[str, str], address: str, until: float) -> int:
    """One page's stream until ``until`` (monotonic): the bytes it got after its first event
    (a snapshot: what a page gets once, not per second)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    got = 0
    head: bytes | None = b""  # the stream up to the end of its first event
    async with (
        httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as http,
        http.stream("GET", "api/stream", params=params) as response,
    ):
        async for chunk in response.aiter_raw():
            if head is not None:
                head += chunk
                end = head.find(b"\n\n", max(0, head.find(b"data: ")))
                if b"data: " in head and end >= 0:
                    got, head = len(head) - end - 2, None
            else:
                got += len(chunk)
            if time.monotonic() >= until:
                return got
    return got


@dataclass
class Measure:
    """One round of one variant."""

    stream_kbs: float
    state_kb: float
    state_ms: float
    page_kb: float
    page_ms: float
    cpu: float
    events_in: float

    @property
    def cpu_per_10k(self) -> float:
        """The CPU share per 10,000 events/s taken in."""
        return self.cpu / self.events_in * 10_000 if self.events_in else float("nan")


async def sample_state(url: str, until: float, paged: bool, out: dict[str, list[float]]) -> None:
    """``/api/state`` (and a page of it) once a second until ``until``: sizes and times."""
    asks: list[tuple[str, dict[str, str]]] = [("state", {})]
    if paged:
        asks.append(("page", {"limit": str(PAGE), "engines_limit": str(PAGE)}))
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while time.monotonic() < until - 1.0:
            for name, params in asks:
                started = time.perf_counter()
                answer = await http.get("api/state", params=params)
                out[f"{name}_ms"].append((time.perf_counter() - started) * 1000)
                out[f"{name}_kb"].append(len(answer.content) / 1024)
            await asyncio.sleep(1.0)


async def measure(
    variant: str, port: int, seconds: float, pages: int, open_run: bool, baseline: Path
) -> Measure:
    """Start ``variant``'s dashboard on the fleet, let it warm up, then measure for ``seconds``."""
    from dashboard_process import cpu_seconds, start_dashboard

    env = {"PYTHONPATH": str(baseline)} if variant == "baseline" else {}
    process, url = start_dashboard(port, env)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            await asyncio.sleep(5.0)  # the retained statuses, the first runs
            state = (await http.get("api/state")).json()
            run_id = state["runs"][0]["run_id"] if open_run and state["runs"] else None
            received0 = state["connection"]["received"]
            before, started = cpu_seconds(process.pid), time.monotonic()
            until = started + seconds
            names = ("state_ms", "state_kb", "page_ms", "page_kb")
            samples: dict[str, list[float]] = {name: [] for name in names}
            params = stream_params(variant, run_id)
            got = await asyncio.gather(
                *(follow(url, params, f"127.0.0.{2 + n // PER_ADDRESS}", until)
                  for n in range(pages)),
                sample_state(url, until, variant != "baseline", samples),
            )  # fmt: skip
            elapsed = time.monotonic() - started
            cpu = (cpu_seconds(process.pid) - before) / elapsed
            received = (await http.get("api/state")).json()["connection"]["received"]
    finally:
        process.terminate()
        process.wait(20)
    median = {k: statistics.median(v) if v else float("nan") for k, v in samples.items()}
    streamed = sum(g for g in got[:pages] if isinstance(g, int))
    return Measure(
        streamed / elapsed / 1024 / pages, median["state_kb"], median["state_ms"],
        median["page_kb"], median["page_ms"], cpu, (received - received0) / elapsed,
    )  # fmt: skip


@dataclass
class Table:
    """The rounds of both variants, printed side by side as medians."""

    engines: int
    rate: int
    pages: int
    open_run: bool
    rounds: dict[str, list[Measure]] = field(default_factory=lambda: {"baseline": [], "ours": []})
    costs: dict[str, list[dict[str, float]]] = field(
        default_factory=lambda: {"baseline": [], "ours": []}
    )

    def print(self, revision: str, seconds: float) -> None:
        count = len(self.rounds["ours"])
        view = "a run opened" if self.open_run else "the runs list"
        print(f"\n{self.engines:,} engines, {self.rate:,} events/s fed; {self.pages} page(s) "
              f"following {view}; medians of {count} rounds of {seconds:g} s; "
              "a shared 2-core machine, busy with other work")  # fmt: skip
        print(f"{'':<42}{'base ' + revision[:8]:>16}{'this tree':>16}")
        rows = [
            ("/api/stream kB/s, one page", "stream_kbs", "{:,.1f}"),
            ("/api/state KB (whole)", "state_kb", "{:,.1f}"),
            ("/api/state ms p50 (whole)", "state_ms", "{:,.1f}"),
            (f"/api/state?limit={PAGE}&engines_limit={PAGE} KB", "page_kb", "{:,.1f}"),
            (f"/api/state?limit={PAGE}&engines_limit={PAGE} ms", "page_ms", "{:,.1f}"),
            ("dashboard CPU (of one core)", "cpu", "{:.0%}"),
            ("events taken in /s", "events_in", "{:,.0f}"),
            # what the machine let the feeder send varies by round: CPU per event compares
            ("CPU per 10,000 events/s taken in", "cpu_per_10k", "{:.0%}"),
        ]
        for label, name, shape in rows:
            cells = []
            for variant in ("baseline", "ours"):
                values = [getattr(m, name) for m in self.rounds[variant]]
                value = statistics.median(values) if values else float("nan")
                paged_on_base = variant == "baseline" and name.startswith("page")
                cells.append("n/a" if paged_on_base or value != value else shape.format(value))
            print(f"{label:<42}{cells[0]:>16}{cells[1]:>16}")
        print(f"in process, no broker, {self.engines:,} engines and a run of each (medians):")
        costs = [
            ("/api/state ms (whole)", "whole_ms"),
            ("/api/state KB (whole)", "whole_kb"),
            (f"/api/state?limit={PAGE}&engines_limit={PAGE} ms", "paged_ms"),
        ]
        for label, name in costs:
            cells = []
            for variant in ("baseline", "ours"):
                values = [cost[name] for cost in self.costs[variant]]
                paged_on_base = variant == "baseline" and name.startswith("paged")
                value = statistics.median(values) if values else float("nan")
                cells.append("n/a" if paged_on_base or value != value else f"{value:,.1f}")
            print(f"{label:<42}{cells[0]:>16}{cells[1]:>16}")


async def run(
    engines: int, rate: int, seconds: float, rounds: int, pages: int, open_run: bool,
    revision: str,
) -> None:  # fmt: skip
    """The fleet on a private mosquitto, and both dashboards against it, alternately."""
    from cascade.testkit import MosquittoBroker

    baseline = baseline_sources(revision)
    table = Table(engines, rate, pages, open_run)
    with MosquittoBroker() as broker:
        feeder = start_feeder(broker.port, engines, rate)
        try:
            await asyncio.sleep(3.0)
            for round_ in range(rounds):
                for variant in ("baseline", "ours"):
                    got = await measure(variant, broker.port, seconds, pages, open_run, baseline)
                    table.rounds[variant].append(got)
                    print(f"round {round_ + 1} {variant}: {got}", flush=True)
                    cost = measure_state_cost(engines, baseline if variant == "baseline" else None)
                    table.costs[variant].append(cost)
                    print(f"round {round_ + 1} {variant} in process: {cost}", flush=True)
        finally:
            feeder.kill()
            feeder.wait()
    table.print(revision, seconds)


def main(arguments: Any) -> None:
    """``bench_dashboard.py --fleet``: its options, as :func:`run` takes them."""
    revision = arguments.baseline or subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    seconds = arguments.seconds if arguments.seconds != 180.0 else 20.0  # 180: not given
    asyncio.run(
        run(arguments.fleet, arguments.rate, seconds, arguments.rounds, arguments.pages,
            arguments.open_run, revision)
    )  # fmt: skip
