"""`cascade why RUN_ID [TASK]`: what holds a run's blocked tasks, from its live telemetry or
the history."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from typing import Annotated, Any

import typer

from cascade.connector_kit import bounded
from cascade.control.run_ids import HeardRuns, Recorded, checked_prefix, is_full, short_id
from cascade.interfaces import Message
from cascade.reader import ReaderModel, SnapshotAsker

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext
from ...plumbing._history_db import Db
from ...plumbing._place import PlaceOrg, PlaceProject, read_place
from ...plumbing._run_lookup import recorded_run_ids, run_named
from ...rendering._times import TimeFormat
from ._why import why_json, why_lines
from ._why_history import not_heard, why_from_history

__all__ = ["why"]


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
    org: PlaceOrg = None,
    project: PlaceProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Why a run's tasks wait: each blocked task and what holds it.

    Why a run's tasks wait: each blocked task with what holds it, from the live telemetry.

    Waits at most --timeout for the run's next heartbeat (every 5 s by default). A run not
    heard (it has ended) is answered from the history (--db, or the default one if it exists),
    saying so; with no history, exit 1. A prefix is looked up as `cascade cancel` does (the
    engines' summaries and the history, then the runs heard within 5 s, at most --timeout);
    one that several runs have exits 2. --org ORG or --project ORG/PROJECT: the run is
    looked for there only (a login over less than global must give its own).
    With --history, from the history only: every task that was held back, for how long, by what.
    Examples: cascade why 58a88765cea2; cascade why 58a88765cea2 'load_*' --timeout 10;
    cascade why 58a88765 --history
    """
    wanted = checked_prefix(run_id)
    place = read_place(org, project)
    if history:
        why_from_history(wanted, task, json_output=json_output, db=db)
        return
    recorded = Recorded() if is_full(wanted) else recorded_run_ids(db, wanted)
    state = ReaderModel(keep_runs=None, keep_for=None)
    heard = HeardRuns(wanted)
    ready: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    asked: set[str] = set()  # runs asked for their held tasks' errors (heartbeats lack them)

    def on_message(message: Message) -> None:
        heard_id = heard.take(message)
        if heard_id is None:
            return
        state.apply(message)
        run = state.runs.get(heard_id)
        if run is None:
            return
        if heard_id not in asked and any(not t.error for t in run.held_tasks()):
            asked.add(heard_id)
            state.request_snapshot(heard_id, 0, run.source)
            return
        # a heartbeat lists every blocked task; an end, that none is; a snapshot, all
        whole = run.heartbeat is not None or run.finished or state.partial(run) is None
        if whole and (heard_id not in asked or all(t.error for t in run.held_tasks())):
            ready[heard_id].set()

    async def listen(connector: Any) -> str | None:
        state.prefix = connector.topic_prefix
        state.ask = SnapshotAsker(connector).ask  # a run heard mid-way: its engine says all
        loop = asyncio.get_running_loop()
        deadline = loop.time() + broker.timeout
        target = await run_named(connector, wanted, recorded, broker.timeout, place)
        if target is None:
            return None
        await connector.subscribe(place.telemetry(state.prefix, target), on_message)
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, deadline - loop.time())):
                await ready[target].wait()
        return target

    waiting_for = f"a heartbeat of run {short_id(wanted)} (at most {broker.timeout:g} s)"
    target = CliContext.of(ctx).run(broker, listen, waiting_for=waiting_for)
    run = state.runs.get(target) if target is not None else None
    if run is None:
        not_heard(target or wanted, recorded, task, json_output=json_output, db=db, broker=broker)
        return
    if not ready[run.run_id].is_set() and run.heartbeat is not None:
        typer.echo(
            f"cascade: no snapshot of run {short_id(run.run_id)} from its engine within "
            f"{broker.timeout:g} s: its held tasks are listed without their errors",
            err=True,
        )
    elif not ready[run.run_id].is_set():
        typer.echo(
            f"cascade: no heartbeat of run {short_id(run.run_id)} within {broker.timeout:g} s: "
            "only the tasks seen blocking while listening are listed",
            err=True,
        )
    if json_output:
        typer.echo(json.dumps({"runs": [why_json(run, task)]}))
        return
    for line in why_lines(run, task, TimeFormat(state.clock())):
        typer.echo(line)
