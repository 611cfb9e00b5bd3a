"""`cascade dashboard` fed 10,000 telemetry events/s from many engines, on a private mosquitto.

A feeder process publishes task events of ENGINES engines (runs of RUN_TASKS tasks, one
after another) at the given rate; the dashboard runs as its own process, as users run
it; one page-like client follows the live stream with one run opened. Rows: the
dashboard idle (the baseline), then fed. Columns: the server's CPU share (of one core),
its resident memory after one minute and at the end, the updates per second a page
gets (it repaints at most once per update), their mean size, and the events per second
the server took in. Linux only (reads /proc).

With ``--fleet ENGINES --rate EVENTS`` instead: a fleet of ENGINES engines (statuses, runs
started and ended) at EVENTS messages/s, and the dashboard of a base revision (``--baseline``,
by default where this branch left main) beside this tree's, in rounds: a page's stream in
bytes/s, ``/api/state``'s size and latency (whole, and a page of it), the dashboard's CPU
(``dashboard_fleet.py``).

Then `/api/state` beside open streams: a dashboard holding one run of BIG_RUN tasks,
0 then 100 pages (from a process of their own, from several loopback addresses, as the
per-address limit wants) following ``/api/stream?run=<it>``; rows give the p50 and p99
latency of ``GET /api/state`` and of ``GET /api/state?run=<it>``, and the server's CPU.

    python bench_dashboard.py [--seconds 180] [--rates 10000,2000] [--quick] [--streams 0,100]
    python bench_dashboard.py --fleet 1000 --rate 10000 [--seconds 20] [--rounds 3] [--pages 1]
        [--open-run] [--baseline REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from dashboard_process import cpu_seconds, rss_mb, start_dashboard

from cascade.testkit import MosquittoBroker

ENGINES = 200
RUN_TASKS = 200
TICK = 0.01  # the feeder publishes rate * TICK messages every TICK seconds
BIG_RUN = 20_000  # tasks of the run the streams follow in the latency rows
SAMPLES = 200  # requests timed per latency row (--samples)
PER_ADDRESS = 8  # streams the dashboard allows from one address without the token


@dataclass
class Row:
    name: str
    cpu_share: float
    rss_1min_mb: float
    rss_end_mb: float
    updates_per_s: float
    update_kb: float
    events_per_s: float


def event(engine: int, run_id: str, task_n: int, phase: int) -> dict[str, object]:
    """The envelope of task ``task_n`` of ``run_id`` starting (phase 0) or completing (1)."""
    body = {
        "type": "TaskStateEvent",
        "task_id": f"t{task_n}",
        "task_name": f"step_{task_n % 17}",
        "state": "COMPLETED" if phase else "RUNNING",
        "duration_ms": 1.5,
        "error": "",
    }
    return {
        "v": "1.0",
        "ts": "2026-11-22T00:00:00+00:00",
        "run_id": run_id,
        "org_id": "local",
        "project_id": "bench",
        "source": f"engine-{engine}",
        "body": body,
    }


def start_feeder(port: int, rate: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--feed", str(port), str(rate)])


def feed(port: int, rate: int) -> None:
    """The feeder process: ENGINES engines' task events at ``rate`` per second, until killed."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-feed-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    runs = [f"{engine:04d}-{0:06d}" for engine in range(ENGINES)]
    step = [0] * ENGINES
    per_tick = max(1, int(rate * TICK))
    start = time.perf_counter()
    sent = 0
    engine = 0
    while True:
        for _ in range(per_tick):
            engine = (engine + 1) % ENGINES
            n = step[engine]
            task_n, phase = divmod(n, 2)
            if task_n >= RUN_TASKS:
                runs[engine] = f"{engine:04d}-{int(runs[engine][5:]) + 1:06d}"
                step[engine] = n = 0
                task_n, phase = 0, 0
            step[engine] = n + 1
            topic = f"cascade/telemetry/local/bench/{runs[engine]}/events"
            client.publish(topic, json.dumps(event(engine, runs[engine], task_n, phase)), qos=0)
        sent += per_tick
        delay = start + sent / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


async def follow(url: str, seconds: float, sizes: list[int], stamps: list[float]) -> None:
    """A page: the live stream, with the busiest run opened once there is one."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        runs = (await http.get("api/state")).json()["runs"]
        params = {"run": runs[0]["run_id"]} if runs else {}
        deadline = time.monotonic() + seconds
        async with http.stream("GET", "api/stream", params=params) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    sizes.append(len(line))
                    stamps.append(time.monotonic())
                if time.monotonic() >= deadline:
                    return


async def measure(name: str, port: int, rate: int, seconds: float) -> Row:
    process, url = start_dashboard(port)
    feeder = None
    try:
        if rate:
            feeder = start_feeder(port, rate)
        sizes: list[int] = []
        stamps: list[float] = []
        before = cpu_seconds(process.pid)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=url) as http:
            received0 = (await http.get("api/state")).json()["connection"]["received"]
        rss_1min: list[float] = []

        async def sample() -> None:
            await asyncio.sleep(min(60.0, seconds * 0.9))
            rss_1min.append(rss_mb(process.pid))

        sampler = asyncio.create_task(sample())
        await follow(url, 2.0, [], [])  # let the first runs appear before a page opens one
        await follow(url, seconds - 2.0, sizes, stamps)
        await sampler
        elapsed = time.monotonic() - started
        cpu = (cpu_seconds(process.pid) - before) / elapsed
        async with httpx.AsyncClient(base_url=url) as http:
            received = (await http.get("api/state")).json()["connection"]["received"]
        span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
        return Row(
            name,
            cpu,
            rss_1min[0],
            rss_mb(process.pid),
            (len(stamps) - 1) / span if len(stamps) > 1 else 0.0,
            statistics.mean(sizes) / 1024 if sizes else 0.0,
            (received - received0) / elapsed,
        )
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
        process.terminate()
        process.wait(20)


def apply_cost(count: int = 100_000) -> tuple[float, float]:
    """µs per message folded by the watch state alone, and by the dashboard's model over it."""
    from cascade.dashboard.live import DashboardModel
    from cascade.interfaces import Message
    from cascade.reader import ReaderModel

    messages = []
    for i in range(count):
        engine, n = i % ENGINES, i // ENGINES
        run = f"{engine:04d}-{n // (2 * RUN_TASKS):06d}"
        payload = event(engine, run, (n // 2) % RUN_TASKS, n % 2)
        messages.append(Message(f"cascade/telemetry/local/bench/{run}/events", payload))
    costs = []
    for model in (ReaderModel(), DashboardModel()):
        started = time.perf_counter()
        for message in messages:
            model.apply(message)
        costs.append((time.perf_counter() - started) / count * 1e6)
    return costs[0], costs[1]


def load_big_run(port: int, run_id: str) -> None:
    """Publish BIG_RUN tasks of ``run_id``, each started and completed, paced to be taken in."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-big-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = f"cascade/telemetry/local/bench/{run_id}/events"
    sent = None
    for n in range(2 * BIG_RUN):
        envelope = event(0, run_id, n // 2, n % 2)
        sent = client.publish(topic, json.dumps(envelope), qos=1)
        if n % 500 == 499:
            sent.wait_for_publish(30)
    if sent is not None:
        sent.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()


def hold(url: str, run_id: str, count: int) -> None:
    """The pages' process: ``count`` streams of ``run_id``, read (and dropped) until killed.

    Prints "ready" once each has had its first state.
    """

    async def page(n: int, ready: asyncio.Queue[int]) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n // PER_ADDRESS}")
        async with (
            httpx.AsyncClient(base_url=url, transport=transport, timeout=None) as http,
            http.stream("GET", "api/stream", params={"run": run_id}) as response,
        ):
            assert response.status_code == 200, response.status_code
            first = True
            async for chunk in response.aiter_raw():
                if first and b"event: state" in chunk:
                    first = False
                    ready.put_nowait(n)

    async def pages() -> None:
        ready: asyncio.Queue[int] = asyncio.Queue()
        jobs = [asyncio.create_task(page(n, ready)) for n in range(count)]
        for _ in range(count):
            await ready.get()
        print("ready", flush=True)
        await asyncio.gather(*jobs)

    asyncio.run(pages())


def start_pages(url: str, run_id: str, count: int) -> subprocess.Popen[str]:
    """The pages' process (see :func:`hold`), once every page has its first state."""
    pages = subprocess.Popen(
        [sys.executable, __file__, "--hold", url, run_id, str(count)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert pages.stdout is not None
    assert pages.stdout.readline().strip() == "ready"
    return pages


@dataclass
class LatencyRow:
    streams: int
    p50_ms: float
    p99_ms: float
    run_p50_ms: float
    run_p99_ms: float
    cpu_share: float


async def timed(
    http: httpx.AsyncClient, params: dict[str, str], samples: int
) -> tuple[float, float]:
    """p50 and p99 of ``samples`` requests to /api/state with ``params``, in ms."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = await http.get("api/state", params=params)
        answer.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


async def state_latency(port: int, streams: list[int], samples: int) -> list[LatencyRow]:
    """The latency rows: one dashboard holding a BIG_RUN-task run, each count of streams."""
    run_id = "big-000001"
    process, url = start_dashboard(port)
    rows = []
    try:
        load_big_run(port, run_id)
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while True:  # a benchmark may poll: the run is loaded once all its tasks are in
                runs = (await http.get("api/state")).json()["runs"]
                done = sum(r["counts"].get("COMPLETED", 0) for r in runs if r["run_id"] == run_id)
                if done >= BIG_RUN:
                    break
                await asyncio.sleep(0.5)
            for count in streams:
                pages = start_pages(url, run_id, count) if count else None
                try:
                    before, started = cpu_seconds(process.pid), time.monotonic()
                    p50, p99 = await timed(http, {}, samples)
                    run_p50, run_p99 = await timed(http, {"run": run_id}, samples)
                    cpu = (cpu_seconds(process.pid) - before) / (time.monotonic() - started)
                    rows.append(LatencyRow(count, p50, p99, run_p50, run_p99, cpu))
                finally:
                    if pages is not None:
                        pages.kill()
                        pages.wait()
    finally:
        process.terminate()
        process.wait(20)
    return rows


async def main(args: argparse.Namespace) -> None:
    with MosquittoBroker() as broker:
        latency = await state_latency(broker.port, args.streams, args.samples)
        if args.latency_only:
            print_latency(latency, args.samples)
            return
        rows = [await measure("idle (baseline)", broker.port, 0, min(args.seconds, 20.0))]
        for rate in args.rates:
            rows.append(await measure(f"{rate:,} events/s", broker.port, rate, args.seconds))
    print(f"\ncascade dashboard, {ENGINES} engines, runs of {RUN_TASKS} tasks, "
          f"{args.seconds:g} s fed, one page following with a run opened")  # fmt: skip
    header = ("server", "CPU (1 core)", "RSS 1 min MB", "RSS end MB", "updates/s",
              "update KB", "events in/s")  # fmt: skip
    print(f"{header[0]:<20}" + "".join(f"{h:>14}" for h in header[1:]))
    for row in rows:
        print(f"{row.name:<20}{row.cpu_share:>13.0%} {row.rss_1min_mb:>13.1f} "
              f"{row.rss_end_mb:>13.1f} {row.updates_per_s:>13.2f} {row.update_kb:>13.1f} "
              f"{row.events_per_s:>13.0f}")  # fmt: skip
    print()
    for row, rate in zip(rows[1:], args.rates, strict=True):
        print(f"{row.name}: updates a page gets <= 4/s (coalesced): {row.updates_per_s:.2f}/s "
              f"{'met' if row.updates_per_s <= 4.2 else 'NOT met'}; server takes in what is "
              f"fed (>= 95%): {row.events_per_s / rate:.0%} "
              f"{'met' if row.events_per_s >= 0.95 * rate else 'NOT met'}")  # fmt: skip
    watch, dashboard = apply_cost()
    print(f"\nfolding one event, µs: watch state {watch:.1f}, dashboard model over it "
          f"{dashboard:.1f} ({dashboard / watch:.2f}x)")  # fmt: skip
    print_latency(latency, args.samples)


def print_latency(rows: list[LatencyRow], samples: int) -> None:
    print(f"\n/api/state beside open streams of a run of {BIG_RUN:,} tasks "
          f"({samples} requests each, one after another)")  # fmt: skip
    header = ("streams open", "state p50 ms", "state p99 ms", "?run= p50 ms", "?run= p99 ms",
              "CPU (1 core)")  # fmt: skip
    print("".join(f"{h:>14}" for h in header))
    for row in rows:
        print(f"{row.streams:>14}{row.p50_ms:>14.1f}{row.p99_ms:>14.1f}{row.run_p50_ms:>14.1f}"
              f"{row.run_p99_ms:>14.1f}{row.cpu_share:>13.0%} ")  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument(
        "--rates",
        type=lambda v: [int(r) for r in v.split(",")],
        default=[10_000],
        help="comma-separated events/s, one row each (default 10000)",
    )
    parser.add_argument("--quick", action="store_true", help="30 s instead of --seconds")
    parser.add_argument(
        "--streams",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[0, 100],
        help="comma-separated counts of open streams, one latency row each (default 0,100)",
    )
    parser.add_argument("--samples", type=int, default=SAMPLES, help="requests per latency row")
    parser.add_argument(
        "--latency-only", action="store_true", help="only the /api/state latency rows"
    )
    parser.add_argument("--fleet", type=int, help="engines of a fleet: the base beside this tree")
    parser.add_argument("--rate", type=int, default=10_000, help="the fleet's events/s")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, for medians")
    parser.add_argument("--pages", type=int, default=1, help="pages following the stream")
    parser.add_argument("--open-run", action="store_true", help="the pages open a run")
    parser.add_argument("--baseline", help="the base revision (default: merge-base with main)")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.seconds = 30.0
    return arguments


if __name__ == "__main__":
    if sys.argv[1:2] == ["--feed"]:
        feed(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["--hold"]:
        hold(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:2] == ["--feed-fleet"]:
        import dashboard_fleet

        dashboard_fleet.feed_fleet(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--state-cost"]:
        import dashboard_fleet

        print(json.dumps(asyncio.run(dashboard_fleet.state_cost(int(sys.argv[2])))))
    else:
        parsed = parse()
        if parsed.fleet:
            import dashboard_fleet

            dashboard_fleet.main(parsed)
        else:
            asyncio.run(main(parsed))
