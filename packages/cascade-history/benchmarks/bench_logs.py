"""Task log ingest rates: lines a second stored by History.store (transactions of 20 batches
of 100 lines) and through the Recorder from the in-memory broker, into SQLite and PostgreSQL.

PostgreSQL is a private cluster (``cascade.testkit.PrivatePostgreSQL``) where it is
installed, or ``CASCADE_HISTORY_BENCH_URL``'s. Prints a table; not a timed test.

    python packages/cascade-history/benchmarks/bench_logs.py [LINES]
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

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received, Recorder
from cascade.interfaces.logs import LogBatch, LogLine, logs_topic
from cascade.testkit import PrivatePostgreSQL, postgresql_bin

LINES_A_BATCH = 100
BATCHES_A_STORE = 20
RUNS = 10


def batches(lines: int) -> Iterator[LogBatch]:
    """Batches of 100 lines of 10 runs' tasks (ten tasks each), as an engine sends them."""
    now = time.time()
    for index in range(lines // LINES_A_BATCH):
        run, seq = index % RUNS, index // RUNS + 1
        ts = datetime.fromtimestamp(now + index * 1e-3, timezone.utc).isoformat()
        yield LogBatch(
            run_id=f"{run:032x}", org_id="local", project_id="default", source="bench-host",
            seq=seq, ts=ts,
            lines=[
                LogLine(ts=ts, task_id=f"task-{n % 10}", task_name=f"task_{n % 10}",
                        n=seq * LINES_A_BATCH + n, logger="app.etl",
                        message=f"processed partition {n} of {seq}: 1,234 rows in 5.6 ms")
                for n in range(LINES_A_BATCH)
            ],
        )  # fmt: skip


def store_rate(url: str, lines: int) -> float:
    """Lines a second through History.store, decoded beforehand."""
    received = [
        Received(logs_topic("local", "default", logs.run_id), logs, time.time())
        for logs in batches(lines)
    ]
    with History(url, mode="write") as history:
        started = time.perf_counter()
        for start in range(0, len(received), BATCHES_A_STORE):
            history.store(received[start : start + BATCHES_A_STORE])
        elapsed = time.perf_counter() - started
        assert len(history.log_lines(f"{0:032x}", limit=None)) == lines // RUNS
    return lines / elapsed


async def recorder_rate(url: str, lines: int) -> tuple[float, int]:
    """Lines a second published on the in-memory broker and stored by a Recorder."""
    broker = InMemoryBroker()
    with History(url, mode="write") as history:
        async with InMemoryConnector(broker, presence=False) as connector:
            recorder = Recorder(connector, history, batch_size=BATCHES_A_STORE)
            await recorder.start()
            async with InMemoryConnector(broker, presence=False) as engine:
                started = time.perf_counter()
                for logs in batches(lines):
                    await engine.publish(logs_topic("local", "default", logs.run_id), logs)
                await broker.idle()
                await recorder.flush(timeout=600)
                elapsed = time.perf_counter() - started
            await recorder.stop()
        stored = sum(c.lines for run in range(RUNS)
                     for c in history.log_counts(f"{run:032x}").values())  # fmt: skip
    return lines / elapsed, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("lines", type=int, nargs="?", default=200_000)
    args, _ = parser.parse_known_args()  # `nox -s bench -- ...` passes every script's flags
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
            rows.append((name, "History.store", store_rate(make_url(), args.lines), args.lines))
            rate, stored = asyncio.run(recorder_rate(make_url(), args.lines))
            rows.append((name, "Recorder (in-memory broker)", rate, stored))
    print(f"{'database':34} {'path':28} {'lines/s':>10} {'stored':>10}")
    for name, path, per_second, kept in rows:
        print(f"{name:34} {path:28} {per_second:10,.0f} {kept:>10,}")


if __name__ == "__main__":
    main()
