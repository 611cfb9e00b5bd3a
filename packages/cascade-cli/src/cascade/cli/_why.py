"""`cascade why RUN_ID [TASK]`: what holds a run's blocked tasks, from its live telemetry."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
from collections import defaultdict
from typing import Annotated, Any

import msgspec
import typer

from cascade.interfaces import Message, SnapshotAsker, telemetry_filter
from cascade.interfaces.connector_kit import bounded

from ._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ._context import CliContext, UsageError, usage
from ._history_db import Db
from ._holds_text import holds_text
from ._inert import SHOWN, inert
from ._run_ids import (
    HeardRuns,
    Recorded,
    checked_prefix,
    is_full,
    live_wait,
    one_run,
    recorded_run_ids,
    short_id,
)
from ._state import WatchState
from ._status_json import iso_time
from ._times import TimeFormat, duration
from ._views import RunView, TaskView
from ._why_history import not_heard, why_from_history

__all__ = ["why"]


def _matches(task: TaskView, pattern: str | None) -> bool:
    return pattern is None or task.task_id == pattern or fnmatch.fnmatchcase(task.name, pattern)


def _blocked(run: RunView, pattern: str | None) -> list[TaskView]:
    tasks = [t for t in run.tasks.values() if t.state == "BLOCKED" and _matches(t, pattern)]
    return sorted(tasks, key=lambda task: task.since)


def _summary(run: RunView) -> str:
    beat = run.heartbeat
    if beat is not None:
        counts = {"blocked": beat.blocked, "running": beat.running, "pending": beat.pending}
    else:
        seen = run.counts()
        counts = {"blocked": seen["BLOCKED"], "running": seen["RUNNING"]}
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    return f"{run.status}" + (f", {said}" if said else "")


def _lines(run: RunView, pattern: str | None, times: TimeFormat) -> list[str]:
    source = inert(run.source, SHOWN["source"])
    head = f"run {inert(short_id(run.run_id), SHOWN['name'])} ({source}): {_summary(run)}"
    if run.finished:
        return [head, "  it has ended: nothing waits"]
    lines = [head]
    blocked = _blocked(run, pattern)
    for task in blocked:
        held = (
            holds_text(task.held_by, times)
            if task.held_by is not None
            else "its engine does not say (an engine from before held_by)"
        )
        name = inert(task.name, SHOWN["name"])
        waited = duration(times.now - task.since)
        lines.append(f"  {name} ({inert(task.task_id, SHOWN['name'])}) blocked {waited}: {held}")
    if not blocked:
        known = [t for t in run.tasks.values() if pattern is not None and _matches(t, pattern)]
        if known:
            lines += [f"  {inert(t.name, SHOWN['name'])} is {t.state}, not blocked" for t in known]
        else:
            lines.append("  nothing blocked" + (f" matches {pattern!r}" if pattern else ""))
    listed = run.heartbeat.blocked if run.heartbeat is not None else 0
    if pattern is None and listed > len(blocked):
        lines.append(f"  ({listed - len(blocked)} more blocked: heartbeats list the first 16)")
    return lines


def _json(run: RunView, pattern: str | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "source": run.source,
        "status": run.status,
        "heartbeat": msgspec.to_builtins(run.heartbeat) if run.heartbeat else None,
        "blocked": [
            {
                "task_id": task.task_id,
                "task_name": task.name,
                "since": iso_time(task.since),
                "held_by": None if task.held_by is None else msgspec.to_builtins(task.held_by),
            }
            for task in _blocked(run, pattern)
        ],
    }


@broker_options
def why(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(help="The run's id (32 hex digits) or a prefix only one run has."),
    ],
    task: Annotated[
        str | None, typer.Argument(help="Only this task: its id, or a glob of its name.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Answer from the history database (`cascade record`): what held each task "
            "the last time it was blocked, for a run that may have ended.",
        ),
    ] = False,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Why a run's tasks wait: each blocked task with what holds it, from the live telemetry.

    Waits at most --timeout for the run's next heartbeat (every 5 s by default). A run not
    heard (it has ended) is answered from the history (--db, or the default one if it exists),
    saying so; with no history, exit 1. A prefix is listened for 5 s (at most --timeout) and
    looked up in the history; one that several runs have exits 2.
    With --history, from the history only: every task that was held back, for how long, by what.
    Examples: cascade why 58a88765cea2; cascade why 58a88765cea2 'load_*' --timeout 10;
    cascade why 58a88765 --history
    """
    try:
        wanted = checked_prefix(run_id)
    except UsageError as exc:
        raise usage(exc) from None
    if history:
        why_from_history(wanted, task, json_output=json_output, db=db)
        return
    recorded = Recorded() if is_full(wanted) else recorded_run_ids(db, wanted)
    state = WatchState(keep_runs=None, keep_for=None)
    heard = HeardRuns(wanted)
    ready: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def on_message(message: Message) -> None:
        heard_id = heard.take(message)
        if heard_id is None:
            return
        state.apply(message)
        run = state.runs.get(heard_id)
        if run is not None and (
            run.heartbeat is not None or run.finished or state.partial(run) is None
        ):  # a heartbeat lists every blocked task; an end, that none is; a snapshot, all
            ready[heard_id].set()

    async def listen(connector: Any) -> str | None:
        state.prefix = connector.topic_prefix
        state.ask = SnapshotAsker(connector).ask  # a run heard mid-way: its engine says all
        exact = wanted if is_full(wanted) else None
        filter_ = telemetry_filter(run_id=exact, prefix=connector.topic_prefix)
        await connector.subscribe(filter_, on_message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + broker.timeout
        target = wanted
        if not is_full(wanted):
            await asyncio.sleep(live_wait(broker.timeout))  # every live run says its id in it
            found = one_run(wanted, heard.ids, recorded.ids, more=recorded.capped)
            if found is None or found not in heard.ids:
                return found
            target = found
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, deadline - loop.time())):
                await ready[target].wait()
        return target

    try:
        target = CliContext.of(ctx).run(broker, listen)
    except UsageError as exc:
        raise usage(exc) from None
    run = state.runs.get(target) if target is not None else None
    if run is None:
        not_heard(target or wanted, recorded, task, json_output=json_output, db=db, broker=broker)
        return
    if not ready[run.run_id].is_set():
        typer.echo(
            f"cascade: no heartbeat of run {short_id(run.run_id)} within {broker.timeout:g} s: "
            "only the tasks seen blocking while listening are listed",
            err=True,
        )
    if json_output:
        typer.echo(json.dumps({"runs": [_json(run, task)]}))
        return
    for line in _lines(run, task, TimeFormat(state.clock())):
        typer.echo(line)
