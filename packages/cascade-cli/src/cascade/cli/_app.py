"""The `cascade` command: watch and steer running Cascade workflows through the broker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.live import Live

from cascade.interfaces import (
    Connector,
    ConnectorError,
    InvalidIdError,
    Message,
    telemetry_filter,
)
from cascade.interfaces.connector_kit import default_org_id, default_project_id, validate_id
from cascade.interfaces.connector_kit import timeout as bounded

from ._broker import (
    DEFAULT_BROKER,
    BrokerOptions,
    ConnectorFactory,
    broker_options,
    finite,
    mqtt_connector,
)
from ._control import (
    UsageError,
    limit_constraints,
    pause_constraint,
    validate_scope,
)
from ._group import OneLineErrors
from ._pipes import guard_stdout, stop_when_stdout_closes
from ._publishing import clear_constraints, parse_constraint_type, set_constraints
from ._reading import ROLLCALL_WAIT, subscribe_constraints, subscribe_statuses
from ._render import render_status, render_watch
from ._state import DEFAULT_KEEP_RUNS, WatchState
from ._status_json import status_json
from ._version import version_callback
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
from .dashboard._command import dashboard as _dashboard_command

__all__ = ["CliContext", "app", "main"]

app = typer.Typer(
    name="cascade",
    help="Watch and steer running Cascade workflows through an MQTT broker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=version_callback,
            help="Print the versions of cascade and its packages, and exit.",
        ),
    ] = False,
) -> None:
    """Watch and steer running Cascade workflows through an MQTT broker."""


@dataclass
class CliContext:
    """What the commands are built from; tests pass their own with ``obj=``."""

    connector_factory: ConnectorFactory = mqtt_connector
    console: Console | None = None


Ttl = Annotated[
    float | None,
    typer.Option("--ttl", help="Seconds until the constraint ends by itself (1 s to 10 years)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Scope = Annotated[str, typer.Argument(help="'global' or 'task:<glob>', e.g. task:api_*.")]

_T = TypeVar("_T")


def _context(ctx: typer.Context) -> CliContext:
    obj = ctx.obj
    return obj if isinstance(obj, CliContext) else CliContext()


def _console(ctx: typer.Context) -> Console:
    return _context(ctx).console or Console()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cascade: {message}", err=True)
    return typer.Exit(1)


def _run(ctx: typer.Context, options: BrokerOptions, job: Callable[..., Awaitable[_T]]) -> _T:
    """Connect (failing fast with a one-line reason), run ``job(connector)``, disconnect."""

    async def session() -> _T:
        connector = _context(ctx).connector_factory(options)
        try:
            await connector.connect(require=True)
            return await job(connector)
        finally:
            await connector.disconnect()

    try:
        return asyncio.run(session())
    except ConnectorError as exc:
        raise _fail(str(exc)) from None


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


def _usage(exc: UsageError) -> typer.BadParameter:
    return typer.BadParameter(str(exc))


@app.command()
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

    _run(ctx, broker, snapshot)
    if json_output:
        typer.echo(json.dumps(status_json(state, hide_after)))
        return
    _console(ctx).print(render_status(state, offline_max_age=hide_after))


@app.command()
@broker_options
def pause(
    ctx: typer.Context,
    scope: Scope = "global",
    ttl: Ttl = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Pause the tasks in SCOPE: they do not start until resumed (running ones finish).

    Examples: cascade pause; cascade pause task:api_* --ttl 300
    """
    try:
        message = pause_constraint(scope, ttl)
    except UsageError as exc:
        raise _usage(exc) from None
    _run(ctx, broker, lambda c: set_constraints(c, [message], broker.timeout))
    typer.echo(f"paused {scope}" + (f" for {ttl:g}s" if ttl else ""))


@app.command()
@broker_options
def limit(
    ctx: typer.Context,
    scope: Scope,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", help="At most N tasks running at once (0: none start)."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="At most R task starts: '10' or '10/s' per second, '10/m', '2/h'; "
            "up to max(1, R per second) may start at once.",
        ),
    ] = None,
    ttl: Ttl = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Limit how many tasks of SCOPE run at once and/or how fast they start.

    Examples: cascade limit task:api_* --concurrency 2; cascade limit global --rate 10/m
    """
    try:
        messages = limit_constraints(scope, concurrency, rate, ttl)
    except UsageError as exc:
        raise _usage(exc) from None
    _run(ctx, broker, lambda c: set_constraints(c, list(messages), broker.timeout))
    typer.echo(f"limited {scope}: " + ", ".join(f"{c.type} {c.params}" for _, c in messages))


@app.command()
@broker_options
def resume(
    ctx: typer.Context,
    scope: Scope = "global",
    constraint_type: Annotated[
        str | None,
        typer.Option("--type", help="Clear only this type: pause, concurrency or rate_limit."),
    ] = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Clear the constraints on SCOPE (all of them, or only --type).

    Examples: cascade resume; cascade resume task:api_* --type pause
    """
    try:
        kind = parse_constraint_type(constraint_type)
        validate_scope(scope)
    except UsageError as exc:
        raise _usage(exc) from None

    _run(ctx, broker, lambda c: clear_constraints(c, scope, kind, broker.timeout))
    typer.echo(f"resumed {scope}" + (f" ({kind})" if kind else ""))


@app.command()
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
        typer.Option("--duration", min=0, callback=finite, help="Stop after this many seconds."),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many telemetry messages.")
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
    console = _console(ctx)
    as_json = json_output or not console.is_terminal
    hide_after = offline_cutoff(show_all, offline_max_age)
    state = WatchState(keep_runs=keep_runs, keep_for=parse_age(keep_for))
    view = functools.partial(render_watch, state, offline_max_age=hide_after, broker=broker.address)

    async def follow(connector: Any) -> None:
        prefix = connector.topic_prefix
        state.prefix = prefix
        done = asyncio.Event()
        seen = 0

        out = console.file

        def on_message(message: Message) -> None:
            nonlocal seen
            oversized = state.oversized
            state.apply(message)
            if as_json and state.oversized == oversized:
                # ASCII JSON: every control character, C1 and lone surrogate escaped
                line = {
                    "topic": message.topic,
                    "retain": message.retain,
                    "payload": message.payload,
                }
                out.write(json.dumps(line) + "\n")
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
            with stop_when_stdout_closes(done.set):  # `| head -1`: end as after --count
                await _wait(done, duration)
            if state.oversized:
                typer.echo(f"cascade: {state.oversized} oversized messages ignored", err=True)
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

    with contextlib.suppress(KeyboardInterrupt):
        _run(ctx, broker, follow)


async def _wait(done: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(duration):
            await done.wait()


async def _refresh(live: Live, frame: Callable[[], RenderableType]) -> None:
    while True:
        live.update(frame())
        await asyncio.sleep(0.25)


@app.command()
@broker_options
def demo(
    ctx: typer.Context,
    tasks: Annotated[
        int, typer.Option("--tasks", min=8, max=500, help="Roughly how many tasks.")
    ] = 24,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            min=1,
            max=3600,
            callback=finite,
            help="About how many seconds the run lasts (paced); default: ~6 s for 24 tasks.",
        ),
    ] = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Run a sample workflow and watch it live.

    Parallel tasks, a retry, a failure, a rate-limited group, and a pause and
    resume sent over the broker. Without --host it starts an embedded MQTT
    broker in this process and prints the command that watches it from
    another terminal. Example: cascade demo --tasks 40 --duration 60
    """
    from ._demo import run_demo

    try:  # the demo's engine reads them: refuse them before starting anything
        default_org_id()
        default_project_id()
    except InvalidIdError as exc:
        raise typer.BadParameter(str(exc)) from None
    context = _context(ctx)
    console = _console(ctx)
    try:
        planned = asyncio.run(run_demo(broker, tasks, context.connector_factory, console, duration))
    except ConnectorError as exc:
        raise _fail(str(exc)) from None
    if not planned:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `cascade` console script."""
    guard_stdout()
    app(obj=CliContext(), prog_name="cascade")


# Registered here, built elsewhere: the dashboard's web stack is an optional extra.
app.command(name="dashboard")(broker_options(_dashboard_command))
