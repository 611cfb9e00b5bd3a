"""`cascade status` and `watch`: what the broker says about engines, runs and constraints."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.live import Live

from cascade.interfaces import Connector, InvalidIdError, Message, SnapshotAsker, telemetry_filter
from cascade.interfaces.connector_kit import bounded, validate_id

from ._broker import DEFAULT_BROKER, MAX_COUNT, MAX_DURATION, BrokerOptions, broker_options, finite
from ._context import CliContext
from ._json_lines import JsonLines
from ._pipes import stop_when_stdout_closes
from ._reading import ROLLCALL_WAIT, subscribe_constraints, subscribe_statuses
from ._render import TimeFormat, missed_lines, refused_lines, render_status, render_watch
from ._state import DEFAULT_KEEP_RUNS, WatchState
from ._status_json import status_json
from ._view_options import (
    DEFAULT_KEEP_FOR_AGE,
    DEFAULT_OFFLINE_MAX_AGE,
    KeepFor,
    KeepRuns,
    OfflineMaxAge,
    ShowAll,
    offline_cutoff,
    parse_age,
)

__all__ = ["status", "watch"]

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

# What status and watch cannot show where the broker sends retained messages to exact
# subscriptions only: the online engines answer a roll call, the indexed constraints are read.
STATUS_LACKS = (
    "status lists the engines online that answer its roll call, not those gone offline, and "
    "not the constraints retained by tools that do not keep Cascade's constraints index"
)
WATCH_LACKS = (
    "watch shows the engines online that answer its roll call and those that change while it "
    "runs, not those gone offline before, and the constraints retained by tools that do not "
    "keep Cascade's constraints index only once they change"
)


def _say_what_the_broker_lacks(connector: Connector, consequence: str) -> None:
    """Once subscribed: a capability the broker lacks, and what it costs, on stderr."""
    if connector.capabilities.retained_to_wildcards is False:
        typer.echo(
            "cascade: warning: this broker does not deliver retained messages to wildcard "
            f"subscriptions: {consequence}",
            err=True,
        )


def _check_id(value: str, option: str) -> None:
    """Refuse an id option that cannot stand in a topic: a usage error (exit 2)."""
    try:
        validate_id(value, option)
    except InvalidIdError as exc:
        raise typer.BadParameter(str(exc)) from None


@broker_options
def status(
    ctx: typer.Context,
    json_output: Json = False,
    show_all: ShowAll = False,
    offline_max_age: OfflineMaxAge = DEFAULT_OFFLINE_MAX_AGE,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Engines online/offline and the constraints in force.

    Example: cascade status --host broker.example
    """
    hide_after = offline_cutoff(show_all, offline_max_age)
    state = WatchState()

    async def snapshot(connector: Any) -> None:
        state.prefix = connector.topic_prefix
        called = await subscribe_statuses(connector, state.apply)
        await subscribe_constraints(connector, state.apply)
        _say_what_the_broker_lacks(connector, STATUS_LACKS)
        if called:  # the roll call's answers: nothing says when all are in
            await asyncio.sleep(min(ROLLCALL_WAIT, broker.timeout))

    CliContext.of(ctx).run(broker, snapshot)
    if json_output:
        typer.echo(json.dumps(status_json(state, hide_after)))
        return
    CliContext.of(ctx).out().print(render_status(state, offline_max_age=hide_after))


@broker_options
def watch(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run id.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON line per message (default when piped).")
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=0,
            max=MAX_DURATION,
            callback=finite,
            help="Stop after this many seconds.",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", min=1, max=MAX_COUNT, help="Stop after this many telemetry messages."
        ),
    ] = None,
    show_all: ShowAll = False,
    offline_max_age: OfflineMaxAge = DEFAULT_OFFLINE_MAX_AGE,
    keep_runs: KeepRuns = DEFAULT_KEEP_RUNS,
    keep_for: KeepFor = DEFAULT_KEEP_FOR_AGE,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """A live view of runs, their tasks, the engines and the constraints in force.

    Ends on Ctrl-C. Examples: cascade watch; cascade watch --project etl --json | jq .
    """
    for option, value in (("--project", project), ("--run", run_id)):
        if value is not None:
            _check_id(value, option)
    console = CliContext.of(ctx).out()
    as_json = json_output or not console.is_terminal
    hide_after = offline_cutoff(show_all, offline_max_age)
    state = WatchState(keep_runs=keep_runs, keep_for=parse_age(keep_for))
    view = functools.partial(render_watch, state, offline_max_age=hide_after, broker=broker.address)

    done = asyncio.Event()

    async def follow(connector: Any) -> None:
        prefix = connector.topic_prefix
        state.prefix = prefix
        state.ask = SnapshotAsker(connector).ask  # a run joined late or with holes: its engine says
        seen = 0
        lines = JsonLines(console.file)

        def on_message(message: Message) -> None:
            nonlocal seen
            oversized = state.oversized
            state.apply(message)
            if as_json and state.oversized == oversized:
                lines.add(message)
            if "/telemetry/" in message.topic:
                seen += 1
                if count is not None and seen >= count:
                    done.set()

        telemetry = telemetry_filter(project_id=project, run_id=run_id, prefix=prefix)
        await connector.subscribe(telemetry, on_message)
        await subscribe_statuses(connector, on_message)
        await subscribe_constraints(connector, on_message)
        _say_what_the_broker_lacks(connector, WATCH_LACKS)
        if as_json:
            try:
                await _wait(done, duration)
            finally:  # on Ctrl-C too: what was left out is said last, on stderr
                lines.flush()
                if state.oversized:
                    typer.echo(f"cascade: {state.oversized} oversized messages ignored", err=True)
                said = missed_lines(state, TimeFormat(state.clock())) + refused_lines(state)
                for line in said:
                    typer.echo(f"cascade: {line.plain}", err=True)
            return

        def frame() -> RenderableType:
            state.observe_connection(connector.is_connected)
            state.prune()
            return view()

        with Live(frame(), console=console, refresh_per_second=4) as live:
            refresher = asyncio.create_task(_refresh(live, frame))
            try:
                await _wait(done, duration)
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
            live.update(frame())

    # `| head -1`: a reader gone ends the view as --count does, from its first message on
    with contextlib.suppress(KeyboardInterrupt), stop_when_stdout_closes(done.set):
        CliContext.of(ctx).run(broker, follow)


async def _wait(done: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(duration):
            await done.wait()


async def _refresh(live: Live, frame: Callable[[], RenderableType]) -> None:
    while True:
        live.update(frame())
        await asyncio.sleep(0.25)
