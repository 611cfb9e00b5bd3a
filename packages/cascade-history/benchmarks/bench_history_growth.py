"""Ingest as the history grows (issue 91): does what the recorder writes per event cost more as
the file fills? Stores runs of 1,000 tasks (two numbered states each, random run ids as
engines make them) through ``History.store`` in the recorder's batches (5,000), a chunk of
runs at a time, and prints each chunk's events a second beside the events and bytes the
history held before it; SQLite (WAL) always, PostgreSQL where ``--postgresql URL`` (a fresh
database) is given. Wall-clock rates: on a busy machine, compare rows of one run. Not a timed
test.

    python bench_history_growth.py                        # 10 chunks of 10 runs (200,000 events)
    python bench_history_growth.py --chunks 40 --runs 25  # 2,000,000 events
    python bench_history_growth.py --postgresql postgresql+psycopg://postgres@127.0.0.1/growth
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from cascade.history import History, Received
from cascade.interfaces import decode_envelope

TASKS = 1_000
BATCH = 5_000  # the recorder's default batch_size


def run_events(run_id: str) -> list[Received]:
    """One run's task events, decoded as the recorder has them."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, timezone.utc).isoformat()
    topic = f"cascade/telemetry/local/default/{run_id}/events"
    events = []
    for index in range(TASKS):
        for offset, state in enumerate(("RUNNING", "COMPLETED")):
            raw = {"v": "1.0", "ts": stamp, "run_id": run_id, "org_id": "local",
                   "project_id": "default", "source": "growth-engine",
                   "seq": 2 * index + offset + 1,
                   "body": {"type": "TaskStateEvent", "task_id": f"work-{index}",
                            "task_name": "work", "state": state, "duration_ms": 1.0,
                            "error": ""}}  # fmt: skip
            events.append(Received(topic, decode_envelope(raw), now))
    return events


def size_of(url: str, history: History) -> str:
    """The history's size on disk: the SQLite file and its WAL, or PostgreSQL's database."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        wal = Path(f"{path}-wal")
        on_disk = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        return f"{on_disk / 1e6:,.0f} MB"
    with sa.create_engine(url).connect() as connection:
        query = sa.text("SELECT pg_database_size(current_database())")
        size: int = connection.execute(query).scalar_one()
        return f"{size / 1e6:,.0f} MB"


def measure(name: str, url: str, chunks: int, runs: int) -> None:
    """Print one row a chunk: events held before it, its size, the chunk's events a second."""
    print(f"\n### {name}\n")
    print("| events held before | size before | events/s of the next chunk |")
    print("|--:|--:|--:|")
    held = 0
    with History(url, mode="write") as history:
        for _ in range(chunks):
            batches = [run_events(uuid.uuid4().hex) for _ in range(runs)]
            size = size_of(url, history)
            began = time.perf_counter()
            for events in batches:
                for start in range(0, len(events), BATCH):
                    history.store(events[start : start + BATCH])
            seconds = time.perf_counter() - began
            stored = sum(len(events) for events in batches)
            print(f"| {held:,} | {size} | {stored / seconds:,.0f} |", flush=True)
            held += stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10, help="runs of 1,000 tasks a chunk")
    parser.add_argument("--postgresql", default=os.environ.get("CASCADE_HISTORY_BENCH_URL"))
    args, _ = parser.parse_known_args()  # `nox -s bench -- ...` passes every script's flags
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/growth.db"
        measure("SQLite (WAL, synchronous=NORMAL)", url, args.chunks, args.runs)
    if args.postgresql:
        measure("PostgreSQL", args.postgresql, args.chunks, args.runs)


if __name__ == "__main__":
    main()
