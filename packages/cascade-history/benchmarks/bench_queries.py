"""The history's queries on a large history, warm, and its size on disk.

Builds a history of ``--events`` recorded events (runs of 100: a start, 49 tasks of 10 names
each RUNNING then COMPLETED, or FAILED in one run of 20, an end; numbered; spread over the
last 30 days) through ``History.store`` in batches of 5,000, into SQLite (WAL) and a private
PostgreSQL (``fsync=off``), then times, warm (the median of 5 after one untimed run):

- the runs that failed in the last 24 h (``History.runs(status="failed", since=24h)``),
- one run's tasks (``History.run``),
- per-task p50/p95 over the last 7 days (``History.tasks(since=7d)``: from the rollup at this
  size; also exactly where the history is small enough to wait for it),

and the bytes an event takes on disk (the database's size over the events; indexes and the
rollup included). Target (issue 24): each query under 100 ms at 10 million events.

    python bench_queries.py              # quick: 200,000 events
    python bench_queries.py --full       # 10,000,000 events (tens of minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cascade.history import History, Received
from cascade.interfaces import decode_envelope
from cascade.testkit import PrivatePostgreSQL, postgresql_bin

BATCH = 5_000
TASKS = 49  # a run: its start, 49 tasks of two states, its end: 100 events
NAMES = 10
DAYS = 30
EXACT_TOO = 1_000_000  # events up to which the exact statistics are timed as well


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def runs_of(count: int, now: float, seed: int = 24) -> Iterator[list[Received]]:
    """``count`` events in runs of 100, the newest ending now, spread over ``DAYS`` days."""
    rng = random.Random(seed)
    runs = max(1, count // (TASKS * 2 + 2))
    spacing = DAYS * 86400 / runs
    medians = [10 ** (1 + index / 3) for index in range(NAMES)]  # 10 ms to ~20 s
    for number in range(runs):
        start = now - (runs - number) * spacing
        run_id = f"{number:032x}"
        failed = number % 20 == 7
        topic = f"cascade/telemetry/local/bench/{run_id}/events"
        base = {"org_id": "local", "project_id": "bench", "source": f"engine-{number % 8}",
                "run_id": run_id}  # fmt: skip
        events: list[dict[str, Any]] = [
            {**base, "ts": _iso(start), "seq": 1,
             "body": {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": TASKS}},
        ]  # fmt: skip
        clock = start
        for task in range(TASKS):
            name = task % NAMES
            duration = rng.lognormvariate(math.log(medians[name]), 0.5)
            end_state = "FAILED" if failed and task == TASKS - 1 else "COMPLETED"
            for state, at, spent in (("RUNNING", clock, 0.0), (end_state, clock, duration)):
                events.append(
                    {**base, "ts": _iso(at + spent / 1000), "seq": len(events) + 1,
                     "body": {"type": "TaskStateEvent", "task_id": f"t-{task}",
                              "task_name": f"task_{name}", "state": state, "duration_ms": spent,
                              "error": "ValueError: bad row" if state == "FAILED" else ""}}
                )  # fmt: skip
            clock += 0.001
        stop = {"type": "LifecycleEvent", "event": "ENGINE_STOPPED",
                "status": "Failed" if failed else "Succeeded"}  # fmt: skip
        if failed:
            stop["error"] = f"t-{TASKS - 1} failed"
        events.append({**base, "ts": _iso(clock + 30), "seq": len(events) + 1, "body": stop})
        yield [Received(topic, decode_envelope(raw), start) for raw in events]


def load(history: History, count: int) -> tuple[float, int, str]:
    """Store ``count`` events; events a second, how many, and a recent run's id."""
    now = time.time()
    batch: list[Received] = []
    stored = 0
    recent = ""
    began = time.perf_counter()
    for run in runs_of(count, now):
        batch.extend(run)
        recent = run[0].message.run_id  # type: ignore[union-attr]
        if len(batch) >= BATCH:
            stored += history.store(batch).stored
            batch = []
    if batch:
        stored += history.store(batch).stored
    return stored / (time.perf_counter() - began), stored, recent


def timed(job: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """The median of ``repeat`` timed runs (ms), after one untimed: warm; and the answer."""
    answer = job()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = job()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), answer


def size_on_disk(history: History, path: Path | None) -> int:
    """The database's bytes: the SQLite file after a checkpoint, or PostgreSQL's own count."""
    engine = sa.create_engine(history.url)
    try:
        with engine.connect() as connection:
            if path is not None:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return path.stat().st_size
            return int(
                connection.execute(
                    sa.text("SELECT pg_database_size(current_database())")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def measure(name: str, url: str, path: Path | None, count: int) -> dict[str, Any]:
    """Build the history at ``url``, then time its queries."""
    with History(url, mode="write") as history:
        empty = size_on_disk(history, path) if path is None else 0
        rate, stored, recent = load(history, count)
        size = size_on_disk(history, path) - empty
        if path is None:  # what autovacuum does after a load, at once
            engine = sa.create_engine(history.url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
            engine.dispose()
        failed_ms, failed = timed(lambda: history.runs(status="failed", since=timedelta(hours=24)))
        run_ms, detail = timed(lambda: history.run(recent))
        tasks_ms, stats = timed(lambda: history.tasks(since=timedelta(days=7)))
        exact_ms = None
        if count <= EXACT_TOO:
            exact_ms, _ = timed(lambda: history.tasks(since=timedelta(days=7), exact=True), 3)
    return {
        "database": name,
        "events": stored,
        "load_rate": rate,
        "bytes_per_event": size / max(stored, 1),
        "failed_ms": failed_ms,
        "failed_runs": len(failed),
        "run_ms": run_ms,
        "run_tasks": len(detail.tasks) if detail is not None else 0,
        "tasks_ms": tasks_ms,
        "tasks_rollup": all(s.approximate for s in stats),
        "exact_ms": exact_ms,
    }


def main(args: argparse.Namespace) -> None:
    count = args.events or (10_000_000 if args.full else 200_000)
    rows = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = folder / "history.sqlite3"
        rows.append(measure("SQLite (WAL)", f"sqlite:///{path}", path, count))
        bin_dir = postgresql_bin()
        if bin_dir is not None:
            server = stack.enter_context(PrivatePostgreSQL(bin_dir))
            rows.append(
                measure("PostgreSQL (fsync=off)", server.url(server.create_database()), None, count)
            )
    print(f"queries on {count:,} recorded events, warm, median of 5 (ms); {os.cpu_count()} CPUs")
    header = ("database", "load ev/s", "bytes/ev", "failed 24h", "one run", "tasks 7d",
              "tasks exact")  # fmt: skip
    print("  ".join(f"{h:>22}" for h in header))
    for r in rows:
        exact = "-" if r["exact_ms"] is None else f"{r['exact_ms']:.1f}"
        way = "rollup" if r["tasks_rollup"] else "exact"
        cells = (r["database"], f"{r['load_rate']:,.0f}", f"{r['bytes_per_event']:.0f}",
                 f"{r['failed_ms']:.1f} ({r['failed_runs']} runs)",
                 f"{r['run_ms']:.1f} ({r['run_tasks']} tasks)",
                 f"{r['tasks_ms']:.1f} ({way})", exact)  # fmt: skip
        print("  ".join(f"{c:>22}" for c in cells))
    for r in rows:
        worst = max(r["failed_ms"], r["run_ms"], r["tasks_ms"])
        verdict = "met" if worst < 100 else "NOT met"
        print(f"{r['database']}: slowest query {worst:.1f} ms: target (< 100 ms) {verdict}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="10 million events")
    parser.add_argument("--events", type=int, default=None, help="this many events instead")
    args, _ = parser.parse_known_args(argv)  # `nox -s bench -- ...` passes every script's flags
    return args


if __name__ == "__main__":
    main(parse())
