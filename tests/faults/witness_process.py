"""The scenarios' sleepy workload without telemetry, in a process of its own
(``python -m faults.witness_process`` from ``tests/``).

A timed scenario runs it beside the run it measures, over the same seconds, so both feel
the same load from whatever else the machine runs (CI's other lanes): the reference a
wall time is compared to. It prints ``{"ready": true}`` once imported and waits for a line
on stdin to start (so the runs begin together, not one an interpreter's start later), then
prints ``{"seconds": ...}``, its run's wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from cascade.runtime import Engine

from .workload import sleepy_fanout


async def measure(tasks: int, seconds: float, concurrency: int) -> float | None:
    engine = Engine(max_concurrency=concurrency, heartbeat_interval=None)
    target = sleepy_fanout(tasks, seconds)
    say(ready=True)
    if not sys.stdin.readline():  # blocks the loop on purpose: nothing runs before the start
        return None  # the test ended before the start
    started = time.monotonic()
    assert await engine.run(target) == sum(range(tasks))
    return time.monotonic() - started


def say(**record: object) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--sleep", type=float, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    options = parser.parse_args()
    seconds = asyncio.run(measure(options.tasks, options.sleep, options.concurrency))
    if seconds is None:
        return 1
    say(seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
