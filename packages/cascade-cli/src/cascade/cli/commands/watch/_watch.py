"""`cascade watch`'s work: the live view (or JSON lines) of what the broker says, until Ctrl-C,
--duration or --count (imported when the command runs: its --help needs none of it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live

from cascade.interfaces import Message
from cascade.reader import (
    ReaderModel,
    SnapshotAsker,
    TelemetrySwitch,
    keep_switching,
    subscribe_statuses,
)

from ...plumbing._broker import BrokerOptions
from ...plumbing._broker_lacks import WATCH_LACKS, say_what_the_broker_lacks
from ...plumbing._context import CliContext
from ...plumbing._pipes import stop_when_stdout_closes
from ...plumbing._place import read_place
from ...plumbing._view_options import (
    check_id,
    offline_cutoff,
    parse_age,
)
from ...rendering._fleet_render import FLEET_CHROME, events_header, render_fleet
from ...rendering._json_lines import JsonLines
from ...rendering._render import TimeFormat, missed_lines, refused_lines, render_watch
from ._ended import recorded_run_of, show_not_live, summarised
from ._live import refresh, wait_until, warn_silent

__all__ = ["show_watch"]


def _note_mode(lines: JsonLines | None, switch: TelemetrySwitch) -> None:
    """--json says each change of mode in a line of its own (the live view, in its header)."""
    if lines is not None:
        lines.note(switch.said())


def show_watch(
    ctx: typer.Context,
    org: str | None,
    project: str | None,
    run_id: str | None,
    json_output: bool,
    duration: float | None,
    count: int | None,
    show_all: bool,
    offline_max_age: str,
    keep_runs: int,
    keep_for: str,
    fleet_threshold: int,
    db: str | None,
    broker: BrokerOptions,
) -> None:
    """`cascade watch` with its options, as :func:`~._command.watch` says it."""
    place = read_place(org, project)
    if run_id is not None:
        check_id(run_id, "--run")
    context = CliContext.of(ctx)
    console = context.out()
    as_json = json_output or not console.is_terminal
    if run_id is not None:
        recorded = recorded_run_of(db, run_id)
        if recorded is not None and recorded[1].ended_at is None:
            recorded[0].close()
        elif recorded is not None:  # ended: it will not be heard again
            try:
                show_not_live(
                    context, recorded, run_id, heard_on=None, waited=0, json_output=as_json
                )
            finally:
                recorded[0].close()
            return
    hide_after = offline_cutoff(show_all, offline_max_age)
    # the table shows no graph: none is read or kept (max_graph_nodes)
    state = ReaderModel(keep_runs=keep_runs, keep_for=parse_age(keep_for), max_graph_nodes=0)
    view = functools.partial(render_watch, state, offline_max_age=hide_after, broker=broker.address)
    fleet_view = functools.partial(
        render_fleet,
        state,
        threshold=fleet_threshold,
        offline_max_age=hide_after,
        broker=broker.address,
    )

    done = asyncio.Event()
    not_heard: list[float] = []  # --run: the seconds its run was listened for in vain

    async def follow(connector: Any) -> None:
        prefix = connector.topic_prefix
        state.prefix = prefix
        state.ask = SnapshotAsker(connector).ask  # a run joined late or with holes: its engine says
        seen = 0
        lines = JsonLines(console.file)
        waiting: list[asyncio.Task[None]] = []

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

        async def unless_heard(waited: float) -> None:
            await asyncio.sleep(waited)
            if not seen:
                not_heard.append(waited)
                done.set()

        telemetry = place.telemetry(prefix, run_id)
        switch = None
        # the telemetry first, as before there were summaries: once the status of an engine
        # is seen, so will its runs' events be (0: fleet mode, no telemetry at all)
        if place.project is None and run_id is None:  # the summaries say whether to read events
            switch = TelemetrySwitch(connector, state, telemetry, on_message, fleet_threshold)
            changed = await switch.update()
        else:
            await connector.subscribe(telemetry, on_message)
            state.telemetry_filters.add(telemetry)
        if run_id is not None:  # not heard within a heartbeat period: not live
            waiting.append(asyncio.create_task(unless_heard(context.quiet_after)))
        called = await subscribe_statuses(connector, on_message, place=place)
        await connector.subscribe_constraints(on_message)
        say_what_the_broker_lacks(called, WATCH_LACKS)
        switching: asyncio.Task[None] | None = None
        if switch is not None:
            note = functools.partial(_note_mode, lines if as_json else None, switch)
            if await switch.update() or changed:  # the retained summaries are in
                note()
            switching = asyncio.create_task(keep_switching(switch, note))
        try:
            await show(connector, switch, lines)
        finally:
            for running in (switching, *waiting):
                if running is not None:
                    running.cancel()
                    await asyncio.gather(running, return_exceptions=True)

    async def show(connector: Any, switch: TelemetrySwitch | None, lines: JsonLines) -> None:
        if as_json:
            warning = asyncio.create_task(
                warn_silent(state, lambda line: typer.echo(f"cascade: warning: {line}", err=True))
            )
            try:
                await wait_until(done, duration)
            finally:  # on Ctrl-C too: what was left out is said last, on stderr
                warning.cancel()
                await asyncio.gather(warning, return_exceptions=True)
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
            if switch is None:
                return view()
            if switch.mode == "fleet":
                return fleet_view(rows=max(3, console.height - FLEET_CHROME))
            return Group(events_header(state.fleet().live_runs, fleet_threshold), view())

        with Live(frame(), console=console, refresh_per_second=4) as live:
            refresher = asyncio.create_task(refresh(live, frame))
            try:
                await wait_until(done, duration)
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
            live.update(frame())

    telemetry_of = (
        "the runs"
        if place.everywhere
        else f"project {place.project}"
        if place.org is None
        else f"project {place.org}/{place.project}"
        if place.project is not None
        else f"org {place.org}"
    )
    # the live view says where it is connected in its last line; --json only on stderr; and
    # of --run, when it is not heard, that it is not live
    quiet = as_json and run_id is None
    waiting_for = f"the telemetry of {telemetry_of} (Ctrl-C ends)" if quiet else None
    # `| head -1`: a reader gone ends the view as --count does, from its first message on
    with contextlib.suppress(KeyboardInterrupt), stop_when_stdout_closes(done.set):
        context.run(broker, follow, waiting_for=waiting_for)
    if run_id is not None and not_heard:
        recorded = recorded_run_of(db, run_id)
        try:
            show_not_live(
                context,
                recorded,
                run_id,
                heard_on=broker.address,
                waited=not_heard[0],
                json_output=as_json,
                summary=summarised(state, run_id),
            )
        finally:
            if recorded is not None:
                recorded[0].close()
