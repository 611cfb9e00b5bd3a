"""A big recorded run through the dashboard's history API: reply size and time, memory, and
`/api/state` latency meanwhile.

Writes a SQLite history holding one run of EVENTS task events (TASKS tasks of four states each:
running, retrying, running, completed), serves it through the dashboard's ASGI app in process
(httpx's ASGI transport: no sockets, so only the server's own work is timed), and reports:
the bytes and seconds of ``GET /api/history/run?id=RUN`` (following ``next_after`` to the end
when the reply is paged, and the first page alone), the process's peak resident memory
growth, and the slowest ``GET /api/state`` answered while the history reply was being made
(from when it was due: a blocked event loop delays it).

Runs against whichever cascade-cli and cascade-history are importable, so the same script
measures a checkout before and after a change:

    python bench_history_run.py [--events 200000] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.history import History, Received
from cascade.interfaces import decode_envelope

RUN = "b16b0000000000000000000000000001"
STATES = ("RUNNING", "RETRYING", "RUNNING", "COMPLETED")


def _received(ts: float, body: dict[str, Any]) -> Received:
    envelope = decode_envelope(
        {
            "ts": datetime.fromtimestamp(ts, timezone.utc).isoformat(),
            "run_id": RUN,
            "org_id": "acme",
            "project_id": "bench",
            "source": "host-1",
            "body": body,
        }
    )
    return Received(f"cascade/telemetry/acme/bench/{RUN}/events", envelope, ts)


def _writer(path: Path) -> History:
    try:
        return History(path, mode="write")  # type: ignore[call-arg, unused-ignore]
    except TypeError:  # before History had a mode: every History wrote
        return History(path)


def build(path: Path, events: int) -> None:
    t0 = time.time() - 86_400
    with _writer(path) as history:
        start = {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": events // 4}
        history.store([_received(t0, start)])
        batch: list[Received] = []
        for index in range(events):
            task, state = divmod(index, len(STATES))
            body = {
                "type": "TaskStateEvent",
                "task_id": f"task-{task:07d}",
                "task_name": f"step-{task % 50}",
                "state": STATES[state],
                "duration_ms": 10.0 * state,
                "error": "E: transient" if STATES[state] == "RETRYING" else "",
            }
            batch.append(_received(t0 + index * 0.001, body))
            if len(batch) == 5_000:
                history.store(batch)
                batch = []
        history.store(batch)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(path: Path) -> None:
    history = History(path)
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
    app = create_app(hub, DashboardSettings(token=None, history=history))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", timeout=600
    ) as http:
        await http.get("/api/state")
        state_latencies: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            # from when it was due (20 ms after the last answer) to its answer: a loop blocked
            # by someone else's work delays the wake-up itself, which counts too
            due = time.perf_counter()
            while not done.is_set():
                await http.get("/api/state")
                answered = time.perf_counter()
                state_latencies.append(answered - due)
                due = answered + 0.02
                await asyncio.sleep(0.02)

        prober = asyncio.ensure_future(probe())
        rss_before = _rss_mb()
        began = time.perf_counter()
        first = await http.get("/api/history/run", params={"id": RUN})
        first_s = time.perf_counter() - began
        total_bytes, pages, tasks = len(first.content), 1, 0
        answer = first.json()
        tasks += len(answer["run"]["tasks"])
        cursor = answer.get("next_after")
        while cursor is not None:
            page = await http.get("/api/history/run", params={"id": RUN, "after": cursor})
            total_bytes += len(page.content)
            pages += 1
            body = page.json()
            tasks += len(body["run"]["tasks"])
            cursor = body["next_after"]
        all_s = time.perf_counter() - began
        done.set()
        await prober
    history.close()
    print(
        f"first reply: {len(first.content):,} bytes in {first_s:.3f} s (status {first.status_code})"
    )
    print(
        f"whole run:   {total_bytes:,} bytes in {pages:,} replies, {tasks:,} tasks, {all_s:.2f} s"
    )
    print(f"peak RSS growth: {_rss_mb() - rss_before:,.0f} MB")
    print(
        f"/api/state meanwhile: {len(state_latencies)} answers, "
        f"slowest {max(state_latencies) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--db", type=Path, help="an existing file of this script's run")
    options = parser.parse_args()
    path = options.db
    if path is None or not path.exists():
        path = path or Path(tempfile.mkdtemp()) / "history.sqlite3"
        began = time.perf_counter()
        build(path, options.events)
        print(f"{options.events:,} events stored in {time.perf_counter() - began:.1f} s ({path})")
    asyncio.run(measure(path))


if __name__ == "__main__":
    main()
