"""What a live view's state costs per message: `ReaderModel.apply` now, beside a baseline.

Feeds a :class:`~cascade.reader.ReaderModel` the telemetry of one run as an
engine sends it (its start, then RUNNING and COMPLETED of each task, numbered with
``seq``, a heartbeat every 1,000 events, its end), each message decoded from its bytes as
a reader receives it, and times the feed per message. Rows:

- ``now``: this checkout's ReaderModel (it refuses what no engine of the run can have sent:
  a run's owner, a number's content, its bounds, a timestamp's skew);
- ``now, sourced layout``: the same, fed the run on ``.../{kind}/{source}`` topics (each
  message's source checked against its topic's level);
- ``baseline``: the model of ``--baseline-ref`` (main before the refusals: the CLI's
  ``WatchState``), loaded from git, with this checkout's ``cascade.interfaces``.

Medians of ``--repeats`` feeds, alternated, in one process. Target: the refusals cost at
most 0.3 µs a message.

    python bench_reader_cost.py [--events 200000] [--repeats 5] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CLI_PATH = "packages/cascade-cli/src/cascade/cli"  # where the model was before the move
READER_PATH = "packages/cascade-client/src/cascade/reader"
BASELINE_REF = "0bd75f9"  # main before the refusals
RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def messages(count: int, source: str | None = None) -> list[Any]:
    """One run's messages, as a reader receives them (topic, decoded payload, bytes); with
    ``source``, on the sourced layout."""
    from cascade.interfaces import Message, events_topic, heartbeat_topic

    events = events_topic("local", "default", RUN, source=source)
    beats = heartbeat_topic("local", "default", RUN, source=source)
    start = time.time() - 3600.0
    out = []

    def add(topic: str, body: dict[str, Any], seq: int | None, at: float) -> None:
        ts = datetime.fromtimestamp(at, timezone.utc).isoformat()
        envelope: dict[str, Any] = {"v": "1.0", "ts": ts, "run_id": RUN, "org_id": "local",
                    "project_id": "default", "source": "host-4242"}  # fmt: skip
        if seq is not None:
            envelope["seq"] = seq
        envelope["body"] = body
        raw = json.dumps(envelope, separators=(",", ":")).encode()
        out.append(Message(topic, json.loads(raw), raw=raw))

    tasks = (count - 2) // 2
    add(events, {"type": "LifecycleEvent", "event": "ENGINE_STARTED", "tasks": tasks}, 1, start)
    seq = 1
    for n in range(tasks):
        for state in ("RUNNING", "COMPLETED"):
            seq += 1
            body = {"type": "TaskStateEvent", "task_id": f"fetch-{n}", "task_name": "fetch",
                    "state": state, "duration_ms": 12.5, "error": ""}  # fmt: skip
            add(events, body, seq, start + seq * 1e-4)
            if seq % 1000 == 0:
                beat = {"type": "Heartbeat", "running": 1, "completed": n, "last_seq": seq}
                add(beats, beat, None, start + seq * 1e-4)
    add(events, {"type": "LifecycleEvent", "event": "ENGINE_STOPPED", "status": "Succeeded"},
        seq + 1, start + (seq + 1) * 1e-4)  # fmt: skip
    return out


def baseline(ref: str) -> Any:
    """The reader model at git ``ref``, loaded as a package of its own: the CLI's
    ``WatchState`` where ``ref`` is older than ``cascade.reader``, else the
    reader's (``ReaderModel``, or ``WatchState`` on the commit that moved it)."""
    package = Path(tempfile.mkdtemp()) / "baseline_reader"
    package.mkdir()
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{ref}:{READER_PATH}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if listed.returncode == 0:
        path, names, module = READER_PATH, listed.stdout.split(), ""
    else:  # before the move: the model was private to the CLI
        path, module = CLI_PATH, "._state"
        names = ["_views.py", "_state.py", "_inert.py"]
        (package / "__init__.py").write_text("")
    for file_name in names:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}/{file_name}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        (package / file_name).write_text(shown.stdout)
    sys.path.insert(0, str(package.parent))
    loaded = importlib.import_module("baseline_reader" + module)
    return getattr(loaded, "ReaderModel", None) or loaded.WatchState


def feed(state_type: Any, feed_messages: list[Any]) -> float:
    """Seconds per message to apply every message to a fresh state."""
    state = state_type(keep_runs=None, keep_for=None)
    apply = state.apply
    gc.collect()  # the previous feed's garbage is not this one's cost
    began = time.perf_counter()
    for message in feed_messages:
        apply(message)
    elapsed = time.perf_counter() - began
    run = state.runs[RUN]
    assert run.finished, "the feed was not taken in whole"
    assert not state.gaps.missed, "the feed was not taken in whole"
    return elapsed / len(feed_messages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="messages fed (200,000)")
    parser.add_argument("--repeats", type=int, default=5, help="feeds per row (5)")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline")
    args = parser.parse_args(argv)

    from cascade.reader import ReaderModel

    plain, sourced = messages(args.events), messages(args.events, "host-4242")
    rows = {
        "now": (ReaderModel, plain),
        "now, sourced layout": (ReaderModel, sourced),
        "baseline": (baseline(args.baseline_ref), plain),
    }
    feed_messages = plain
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (state_type, fed) in rows.items():
            fresh = [replace(m, raw=bytes(bytearray(m.raw))) for m in fed]  # unhashed
            times[name].append(feed(state_type, fresh))
    base = statistics.median(times["baseline"])
    print(f"\nReaderModel.apply, {len(feed_messages):,} messages of one run, "
          f"median of {args.repeats} (baseline: {args.baseline_ref})\n")  # fmt: skip
    print("| state | µs per message | vs baseline | added µs |")
    print("|---|---|---|---|")
    for name in rows:
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1e6:.2f} | {median / base:.2f}x | "
              f"{(median - base) * 1e6:+.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
