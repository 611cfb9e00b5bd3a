"""A serving engine in a process of its own, for scenarios that kill it mid-run.

Serves ``etl``: a chain of ``--tasks`` async steps (each sleeps ``--sleep`` seconds and adds
its number to the one before), keeping results in ``--results`` (a store the servers share).
Its announcement says when it serves. Prints one JSON object per line on stdout, for the test
to wait on:

- ``{"event": "running", "i": ..., "run": ...}`` as each step starts, ``{"event": "done", ...}``
  as it returns; ``{"event": "finished", "run": ..., "status": ..., "carried_on": ...,
  "left_lost": ..., "skipped": ...}`` as a run ends, with the engine's carry-on counters and
  the slots it skipped.

``--die-at N``: step N kills its own process (SIGKILL), each time it runs. ``--stall-at N``:
step N of a run that carries nothing on (no rerun) waits until the scenario kills its process
there, however slowly the store journals the steps before it. ``--unsafe-at N``:
step N is declared unsafe to repeat (``@task(repeatable=False)``). ``--flaky-at N``: step N,
tried up to 3 times, fails its first two attempts and takes 2 s at its third. ``--hold-at N``:
step N, tried twice, fails each attempt and is then held for a decision (an hour). ``--every
S``: a schedule ``nightly`` starts ``etl`` every ``S`` seconds too (a slot claimed by one server
alone). ``--gate``: ``etl`` ends with ``publish``, which waits for the gate ``approve`` too (held
from the run's start until someone approves it). ``--slow-store S``: each run's manifest (or
journal) takes ``S`` seconds more to read, as from an object store far away. A ``running``
line says its step's ``attempt``. ``--username`` and ``--password``: the broker login (a broker
with an ACL: telemetry on the sourced topics, as its ACL has them). Each warning the serving
engine logs is a line too, ``{"event": "warning", "message": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from datetime import timedelta
from typing import Any

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import (
    Engine,
    LazyResult,
    ResultStore,
    RetryPolicy,
    RunFinished,
    RunManifest,
    Schedule,
    current_task,
    gate,
    task,
)


class SlowStore(ResultStore):
    """A results store whose manifests take ``delay`` seconds more to read."""

    def __init__(self, url: str, delay: float) -> None:
        super().__init__(url)
        self.delay = delay

    def manifest(self, run_id: str) -> RunManifest:
        time.sleep(self.delay)  # called off the event loop, as every read of the store is
        return super().manifest(run_id)


def say(**record: Any) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Said(logging.Handler):
    """The serving engine's warnings, each a line."""

    def emit(self, record: logging.LogRecord) -> None:
        say(event="warning", message=record.getMessage())


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--keepalive", type=int, default=2)
    parser.add_argument("--policy", default="carry-on")
    parser.add_argument("--max-carry-ons", type=int, default=3)
    parser.add_argument("--die-at", type=int, default=0, help="the step that kills its engine")
    parser.add_argument("--stall-at", type=int, default=0, help="the step a first run stops at")
    parser.add_argument("--unsafe-at", type=int, default=0, help="the step not safe to repeat")
    parser.add_argument("--every", type=int, default=0, help="a schedule's period, seconds")
    parser.add_argument("--gate", action="store_true", help="etl waits for an approval too")
    parser.add_argument("--flaky-at", type=int, default=0, help="the step that fails twice")
    parser.add_argument("--hold-at", type=int, default=0, help="the step held on its failure")
    parser.add_argument("--slow-store", type=float, default=0.0, help="seconds a manifest read")
    parser.add_argument("--username", default=None, help="the broker login")
    parser.add_argument("--password", default=None)
    options = parser.parse_args()

    async def step_fn(previous: int, i: int) -> int:
        context = current_task()
        run = context.run_id if context is not None else None
        attempt = context.attempt if context is not None else 1
        say(event="running", i=i, run=run, attempt=attempt, at=time.time())
        if i == options.die_at:  # as a task that exhausts the machine's memory would
            os.kill(os.getpid(), signal.SIGKILL)
        if i == options.stall_at and context is not None and context.root_run == run:
            await asyncio.Event().wait()  # until the scenario kills this process
        if i == options.hold_at or (i == options.flaky_at and attempt < 3):
            raise ValueError(f"step {i} failed at attempt {attempt}")
        await asyncio.sleep(2.0 if i == options.flaky_at else options.sleep)
        say(event="done", i=i, run=run)
        return previous + i

    step = task(name="step")(step_fn)
    unsafe = task(name="step", repeatable=False)(step_fn)  # a payment, an email
    flaky = task(name="step", retry=RetryPolicy(max_attempts=3))(step_fn)
    held = task(
        name="step", retry=RetryPolicy(max_attempts=2), on_failure="hold", hold_timeout=3600
    )(step_fn)
    special = {options.unsafe_at: unsafe, options.flaky_at: flaky, options.hold_at: held}

    @task(name="publish")
    def publish(value: int, approved: object) -> int:
        return value

    def etl() -> LazyResult[int]:
        value: LazyResult[int] = step(0, 1)
        for i in range(2, options.tasks + 1):
            value = special.get(i, step)(value, i)
        if options.gate:
            return publish(value, gate("Publish the ETL's tables?", name="approve"))
        return value

    connector = MqttConnector(
        options.host,
        options.port,
        topic_prefix=options.prefix,
        source_id=options.source,
        keepalive=options.keepalive,
        username=options.username,
        password=options.password,
        sourced_topics=True if options.username else None,
    )
    slow = SlowStore(options.results, options.slow_store) if options.slow_store else None
    engine = Engine(connector, results=slow or options.results, heartbeat_interval=None)

    def finished(event: object) -> None:
        if isinstance(event, RunFinished):  # with what the engine counts of carry-ons
            stats = engine.stats
            say(
                event="finished",
                run=event.run_id,
                status=event.status,
                carried_on=stats.runs_carried_on,
                left_lost=stats.runs_left_lost,
                skipped=stats.slots_skipped,
            )

    engine.events.subscribe(finished)
    # warnings on stderr as ever (a handler of its own would end the last resort's), and said
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("cascade.runtime.serve").addHandler(Said(logging.WARNING))
    every = timedelta(seconds=options.every)
    await engine.serve(
        {"etl": etl},
        schedules={"nightly": Schedule(every=every, workflow="etl")} if options.every else None,
        on_engine_lost=options.policy,  # serve checks it
        max_carry_ons=options.max_carry_ons,
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
