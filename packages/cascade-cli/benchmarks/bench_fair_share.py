"""A team's dashboard under floods and a greedy viewer: is the signed-in operator still served?

A private mosquitto (``cascade.testkit``) with an engine running small workflows of acme/etl
on it; a history of RUNS recorded runs; a real OpenID Connect provider (oidc-provider-mock, in
a process of its own); and `cascade dashboard --roles` as its own process, as users run it,
with a ``--token`` for an operator (olga, over ``org:acme``) and one for a viewer (vera).
While the operator's page streams (``/api/stream?since=0``), she polls ``GET /api/state``
every 20 ms and reads the history two requests at a time (40 reads), in four situations, each
from a process of its own:

- ``idle``: nothing else (the baseline);
- ``login flood``: REQUESTS unauthenticated ``GET /auth/login``, 50 at a time;
- ``anonymous API``: REQUESTS ``GET /api/state`` / ``/api/history/runs`` / ``/api/stream``
  without a sign-in, 50 at a time;
- ``greedy viewer``: the viewer opens 16 streams and loops on history searches, 24 at a time,
  for SECONDS.

Columns: the operator's ``/api/state`` p50 and p95 (ms), her history reads that answered 200,
whether her stream was still going at the end, the dashboard's CPU per flood request, and
what the load was answered (status x count). Medians of ``--repeats`` rounds, each on a fresh
dashboard. Targets (issue 45): p95 ≤ 100 ms under both floods; under the greedy viewer her
stream never ends and none of her reads fail. Linux only (reads /proc). Runs against
whichever cascade-cli is importable, so the same script measures a checkout before and after:

    python bench_fair_share.py [--repeats 3] [--requests 2000] [--seconds 10] [--runs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from cascade.testkit import MosquittoBroker, free_port

ROLES = """
[[grant]]
role = "operator"
scopes = ["org:acme"]
people = ["olga"]

[[grant]]
role = "viewer"
scopes = ["org:acme"]
people = ["vera"]
"""
OLGA = {"Authorization": "Bearer olga-secret-for-the-bench"}
VERA = {"Authorization": "Bearer vera-secret-for-the-bench"}
CONCURRENCY = 50  # flood requests in flight at once
SCENARIOS = ("idle", "login flood", "anonymous API", "greedy viewer")
SEARCHES = 24  # the greedy viewer's history searches at once (more than the 17 main let wait)
MIN_SAMPLES = 200  # /api/state polls at least, per situation
READS = 40  # the operator's history reads per situation


# -- the processes beside the dashboard ----------------------------------------------------


def provider() -> None:
    """The OpenID Connect provider, until killed; its port printed first."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        print(server.server_port, flush=True)
        while True:
            time.sleep(3600)


def engine(port: int) -> None:
    """An engine of acme/etl running a workflow of 10 short tasks every second, until killed."""
    from cascade.connectors.mqtt import MqttConnector
    from cascade.runtime import Engine, task

    @task(name="bench_step")
    async def step(n: int) -> int:
        await asyncio.sleep(0.05)
        return n

    async def loop() -> None:
        connector = MqttConnector("127.0.0.1", port)
        runner = Engine(connector, org_id="acme", project_id="etl", heartbeat_interval=1.0)
        while True:
            await runner.run([step(n) for n in range(10)])
            await asyncio.sleep(1.0)

    asyncio.run(loop())


async def flood(url: str, kind: str, count: int) -> None:
    """``count`` requests nobody signed in for, CONCURRENCY at a time; prints their statuses."""
    paths = (
        ["/auth/login"]
        if kind == "login"
        else ["/api/state", "/api/history/runs", "/api/stream?since=0"]
    )
    statuses: Counter[str] = Counter()
    queue = iter(range(count))
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def worker() -> None:
            for n in queue:
                try:
                    answer = await http.get(paths[n % len(paths)])
                    statuses[str(answer.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    print(json.dumps(statuses), flush=True)


async def greedy_viewer(url: str, seconds: float) -> None:
    """16 streams held open and read, and SEARCHES history searches at once, for ``seconds``."""
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, headers=VERA, timeout=60) as http:

        async def stream() -> None:
            async with http.stream("GET", "/api/stream", params={"since": "0"}) as answer:
                statuses[f"stream {answer.status_code}"] += 1
                async for _ in answer.aiter_bytes():
                    if time.monotonic() >= deadline:
                        return

        async def search(n: int) -> None:
            while time.monotonic() < deadline:
                params = {"task": "step_*", "limit": "500"} if n % 2 else {"status": "FAILED"}
                answer = await http.get("/api/history/runs", params=params)
                statuses[f"search {answer.status_code}"] += 1

        streams = [asyncio.create_task(stream()) for _ in range(16)]
        await asyncio.gather(*(search(n) for n in range(SEARCHES)))
        await asyncio.wait(streams, timeout=5)
    print(json.dumps(statuses), flush=True)


# -- the history and the dashboard ---------------------------------------------------------


def build_history(path: Path, runs: int) -> None:
    """``runs`` recorded runs of acme/etl, 20 tasks each (one run in ten with a failure)."""
    from cascade.history import History, Received
    from cascade.interfaces import decode_envelope

    t0 = time.time() - 3 * 86_400
    with History(path, mode="write") as history:
        for run in range(runs):
            run_id = f"{run:032x}"
            batch = []
            for index, (state, at) in enumerate(
                [("RUNNING", 0.0), ("FAILED" if run % 10 == 0 else "COMPLETED", 0.5)] * 20
            ):
                body = {"type": "TaskStateEvent", "task_id": f"t-{index // 2}",
                        "task_name": f"step_{index // 2}", "state": state, "duration_ms": 5.0,
                        "error": "E: bench" if state == "FAILED" else ""}  # fmt: skip
                ts = t0 + run * 60 + index + at
                envelope = decode_envelope({
                    "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
                    "run_id": run_id, "org_id": "acme", "project_id": "etl",
                    "source": "bench-engine", "body": body,
                })  # fmt: skip
                batch.append(Received(f"cascade/telemetry/acme/etl/{run_id}/events", envelope, ts))
            history.store(batch)


def start_dashboard(folder: Path, mqtt: int, issuer: str) -> tuple[subprocess.Popen[str], str]:
    """`cascade dashboard --roles` on the broker at ``mqtt``; the process and its URL."""
    roles = folder / "roles.toml"
    roles.write_text(ROLES, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tokens = [f"{name}={header['Authorization'][7:]}" for name, header in
              (("olga", OLGA), ("vera", VERA))]  # fmt: skip
    command = [
        sys.executable, "-m", "cascade.cli", "dashboard", "--port", str(mqtt),
        "--listen", f"127.0.0.1:{port}", "--roles", str(roles), "--db", str(folder / "h.db"),
        "--oidc-issuer", issuer, "--oidc-client-id", "cascade-bench", "--public-url", url,
        *(arg for token in tokens for arg in ("--token", token)),
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "CASCADE_OIDC_CLIENT_SECRET": "bench-client-secret",
           "CASCADE_SESSION_SECRET": "a-session-secret-for-the-bench"}  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if re.search(r"cascade dashboard on http://", line):
            return process, url
    raise RuntimeError("the dashboard did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def helper(*args: str) -> subprocess.Popen[str]:
    """This script in another mode (a provider, an engine, a load), its stdout read here."""
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip


# -- the operator --------------------------------------------------------------------------


async def operator_stream(http: httpx.AsyncClient, opened: asyncio.Event) -> str:
    """The operator's page's stream, read until cancelled; why it ended if it did."""
    async with http.stream("GET", "/api/stream", params={"since": "0"}) as answer:
        if answer.status_code != 200:
            return f"refused {answer.status_code}"
        async for line in answer.aiter_lines():
            if line.startswith("event: snapshot"):
                opened.set()
    return "ended"


async def situation(url: str, pid: int, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The operator's figures while ``name`` runs."""
    async with httpx.AsyncClient(base_url=url, headers=OLGA, timeout=60) as http:
        opened = asyncio.Event()
        stream = asyncio.create_task(operator_stream(http, opened))
        await asyncio.wait_for(opened.wait(), 30)
        recorded = (await http.get("/api/history/runs", params={"limit": 50})).json()
        run_ids = [run["run_id"] for run in recorded["runs"]]
        load = None
        if name == "login flood":
            load = helper("--flood", url, "login", str(args.requests))
        elif name == "anonymous API":
            load = helper("--flood", url, "api", str(args.requests))
        elif name == "greedy viewer":
            load = helper("--viewer", url, str(args.seconds))
        cpu0, started = cpu_seconds(pid), time.monotonic()
        latencies: list[float] = []
        reads: Counter[int] = Counter()
        polls = 0
        # timed while the load runs (idle: MIN_SAMPLES); her reads go on to READS meanwhile
        while (load.poll() is None if load is not None else len(latencies) < MIN_SAMPLES) or (
            sum(reads.values()) < READS
        ):
            loaded = load is None or load.poll() is None
            begun = time.perf_counter()
            assert (await http.get("/api/state")).status_code == 200
            if loaded:
                latencies.append((time.perf_counter() - begun) * 1000)
            polls += 1
            if sum(reads.values()) < READS and polls % 2:
                run_id = run_ids[polls % len(run_ids)]
                pair = [http.get("/api/history/runs", params={"limit": 100}),
                        http.get("/api/history/run", params={"id": run_id})]  # fmt: skip
                for answer in await asyncio.gather(*pair):
                    reads[answer.status_code] += 1
            await asyncio.sleep(0.02)
        cpu = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - started
        going = not stream.done()
        stream.cancel()
        ended = "going" if going else (await asyncio.gather(stream, return_exceptions=True))[0]
        answered = json.loads(load.communicate()[0]) if load is not None else {}
    quantiles = statistics.quantiles(latencies, n=20)
    flood = name in ("login flood", "anonymous API")
    return {
        "p50": statistics.median(latencies),
        "p95": quantiles[18],
        "reads_ok": reads[200],
        "reads": sum(reads.values()),
        "stream": ended if isinstance(ended, str) else str(ended),
        "cpu_ms": cpu * 1000 / args.requests if flood else None,
        "cpu_share": cpu / elapsed,
        "answered": answered,
    }


def shown(answered: dict[str, int]) -> str:
    return ", ".join(f"{key} x{count}" for key, count in sorted(answered.items())) or "-"


def report(rounds: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\nThe operator beside each load: medians of {len(rounds)} rounds, {args.runs} "
          f"recorded runs, {args.requests} flood requests ({CONCURRENCY} at a time), the "
          f"greedy viewer for {args.seconds:g} s.\n")  # fmt: skip
    print("| situation | /api/state p50 ms | p95 ms | history reads ok | her stream "
          "| dashboard CPU ms per flood request | the load was answered |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in SCENARIOS:
        rows = [one[name] for one in rounds]
        cpu = [row["cpu_ms"] for row in rows if row["cpu_ms"] is not None]
        streams = Counter(row["stream"] for row in rows)
        cells = [
            name,
            f"{statistics.median(row['p50'] for row in rows):.1f}",
            f"{statistics.median(row['p95'] for row in rows):.1f}",
            f"{min(row['reads_ok'] for row in rows)}/{max(row['reads'] for row in rows)}",
            ", ".join(f"{why} x{n}" for why, n in streams.items()),
            f"{statistics.median(cpu):.1f}" if cpu else "-",
            shown(rows[len(rows) // 2]["answered"]),
        ]
        print("| " + " | ".join(cells) + " |")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, MosquittoBroker() as broker:
        path = Path(folder)
        build_history(path / "h.db", args.runs)
        issuer_process = helper("--provider")
        engines = helper("--engine", str(broker.port))
        try:
            assert issuer_process.stdout is not None
            issuer = f"http://localhost:{issuer_process.stdout.readline().strip()}"
            rounds = []
            for repeat in range(args.repeats):
                dashboard, url = start_dashboard(path, broker.port, issuer)
                try:
                    figures = {}
                    for name in SCENARIOS:
                        figures[name] = await situation(url, dashboard.pid, name, args)
                        print(f"round {repeat + 1} {name}: {json.dumps(figures[name])}",
                              file=sys.stderr, flush=True)  # fmt: skip
                    rounds.append(figures)
                finally:
                    dashboard.terminate()
                    dashboard.wait(10)
        finally:
            for process in (issuer_process, engines):
                process.terminate()
                process.wait(10)
    report(rounds, args)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--provider", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--flood", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--viewer", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = parse()
    if options.provider:
        provider()
    elif options.engine:
        engine(options.engine)
    elif options.flood:
        asyncio.run(flood(options.flood[0], options.flood[1], int(options.flood[2])))
    elif options.viewer:
        asyncio.run(greedy_viewer(options.viewer[0], float(options.viewer[1])))
    else:
        asyncio.run(main(options))
