"""Ingest rates: events a second stored by History.store (batches of 1,000, one transaction
each), and through the Recorder from the in-memory broker, into SQLite and PostgreSQL.

PostgreSQL is a private cluster (``cascade.testkit.PrivatePostgreSQL``) where it is
installed, or ``CASCADE_HISTORY_BENCH_URL``'s. Prints a table; not a timed test.

    python packages/cascade-history/benchmarks/bench_ingest.py [EVENTS] [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received, Recorder
from cascade.interfaces import decode_envelope, events_topic
from cascade.testkit import PrivatePostgreSQL, postgresql_bin

BATCH = 1_000
TASKS_PER_RUN = 50


def envelopes(count: int) -> Iterator[dict[str, Any]]:
    """Runs of 50 tasks, two states each, numbered like an engine's (seq), until ``count``."""
    now = time.time()
    made = 0
    run = 0
    while made < count:
        run_id = f"{run:032x}"
        seq = 0
        for index in range(TASKS_PER_RUN):
            for state in ("RUNNING", "COMPLETED"):
                seq += 1
                made += 1
                yield {
                    "ts": datetime.fromtimestamp(now + made * 1e-4, timezone.utc).isoformat(),
                    "run_id": run_id,
                    "org_id": "local",
                    "project_id": "default",
                    "source": "bench-host",
                    "seq": seq,
                    "body": {
                        "type": "TaskStateEvent",
                        "task_id": f"task-{index}",
                        "task_name": f"task_{index % 10}",
                        "state": state,
                        "duration_ms": 12.5,
                        "error": "",
                    },
                }
                if made >= count:
                    return
        run += 1


def store_rate(url: str, count: int) -> float:
    """Events a second through History.store, decoded beforehand."""
    received = [
        Received("cascade/telemetry/local/default/x/events", decode_envelope(raw), 0.0)
        for raw in envelopes(count)
    ]
    with History(url, mode="write") as history:
        started = time.perf_counter()
        for start in range(0, count, BATCH):
            history.store(received[start : start + BATCH])
        elapsed = time.perf_counter() - started
        assert sum(run.tasks.get("COMPLETED", 0) for run in history.runs(limit=10**6)) > 0
    return count / elapsed


async def recorder_rate(url: str, count: int) -> tuple[float, int]:
    """Events a second published on the in-memory broker and stored by a Recorder."""
    broker = InMemoryBroker()
    with History(url, mode="write") as history:
        async with InMemoryConnector(broker, presence=False) as connector:
            recorder = Recorder(connector, history, max_queue=count + 1)
            await recorder.start()
            async with InMemoryConnector(broker, presence=False) as engine:
                started = time.perf_counter()
                for raw in envelopes(count):
                    topic = events_topic("local", "default", raw["run_id"])
                    await engine.publish(topic, raw)
                await broker.idle()
                await recorder.flush(timeout=600)
                elapsed = time.perf_counter() - started
            await recorder.stop()
    return count / elapsed, recorder.stats.stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("events", type=int, nargs="?", default=None)
    parser.add_argument("--full", action="store_true", help="500,000 events")
    args, _ = parser.parse_known_args()  # `nox -s bench -- ...` passes every script's flags
    count = args.events or (500_000 if args.full else 50_000)
    rows: list[tuple[str, str, float, int]] = []
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())

        def sqlite_url() -> str:
            return f"sqlite:///{folder}/{time.time_ns()}.db"

        targets: list[tuple[str, Callable[[], str]]] = [
            ("SQLite (WAL, synchronous=NORMAL)", sqlite_url)
        ]
        given = os.environ.get("CASCADE_HISTORY_BENCH_URL")
        bin_dir = postgresql_bin()
        if given is not None:
            targets.append(("PostgreSQL", lambda: given))
        elif bin_dir is not None:
            server = stack.enter_context(PrivatePostgreSQL(bin_dir))

            def private_url() -> str:
                return str(server.url(server.create_database()))

            targets.append(("PostgreSQL (private, fsync=off)", private_url))
        for name, make_url in targets:
            rows.append((name, "History.store", store_rate(make_url(), count), count))
            rate, stored = asyncio.run(recorder_rate(make_url(), count))
            rows.append((name, "Recorder (in-memory broker)", rate, stored))
    print(f"{'database':34} {'path':28} {'events/s':>10} {'stored':>10}")
    for name, path, events_per_second, kept in rows:
        print(f"{name:34} {path:28} {events_per_second:10,.0f} {kept:>10,}")


if __name__ == "__main__":
    main()
