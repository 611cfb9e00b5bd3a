"""An engine in a process of its own, for scenarios that kill, freeze or interrupt it.

Runs ``--tasks`` async tasks (each sleeps ``--sleep`` seconds and returns its
number) and a final sum through ``cascade.runtime.run`` (the synchronous
shortcut, which turns Ctrl-C into a cancelled run) over an ``MqttConnector``.
Prints one JSON object per line on stdout, for the test to wait on:

- ``{"event": "running", "i": ..., "source": ..., "session": ...}`` as each task starts;
- ``{"event": "done", "result": ...}`` when the run completes;
- ``{"event": "interrupted", "seconds": ...}`` after Ctrl-C (SIGINT), then exit code 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import LazyResult, run, task


def say(**record: Any) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--keepalive", type=int, default=60)
    parser.add_argument("--flush-timeout", type=float, default=5.0)
    options = parser.parse_args()

    connector = MqttConnector(
        options.host,
        options.port,
        topic_prefix=options.prefix,
        source_id=options.source,
        keepalive=options.keepalive,
        flush_timeout=options.flush_timeout,
    )

    @task
    async def step(i: int) -> int:
        say(event="running", i=i, source=connector.source_id, session=connector.session)
        await asyncio.sleep(options.sleep)
        return i

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    target: LazyResult[int] = total([step(i) for i in range(options.tasks)])
    try:
        result = run(
            target,
            connector=connector,
            max_concurrency=options.concurrency,
            heartbeat_interval=None,
            shutdown_timeout=options.flush_timeout,
        )
    except KeyboardInterrupt:
        say(event="interrupted", monotonic=time.monotonic())
        return 130
    say(event="done", result=result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
