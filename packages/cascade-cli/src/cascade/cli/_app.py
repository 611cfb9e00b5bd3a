"""The `cascade` command: watch and steer running Cascade workflows through the broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live

from cascade.interfaces import (
    ConnectorError,
    Message,
    constraints_filter,
    encode_payload,
    status_filter,
    telemetry_filter,
)
from cascade.interfaces import timeout as bounded

from ._broker import (
    DEFAULT_BROKER,
    BrokerOptions,
    ConnectorFactory,
    broker_options,
    mqtt_connector,
)
from ._control import (
    UsageError,
    limit_constraints,
    pause_constraint,
    validate_scope,
)
from ._publishing import clear_constraints, parse_constraint_type, publish_confirmed
from ._render import constraints_table, engines_table, render_watch
from ._state import WatchState
from .dashboard._command import dashboard as _dashboard_command

__all__ = ["CliContext", "app", "main"]

app = typer.Typer(
    name="cascade",
    help="Watch and steer running Cascade workflows through an MQTT broker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class CliContext:
    """What the commands are built from; tests pass their own with ``obj=``."""

    connector_factory: ConnectorFactory = mqtt_connector
    console: Console | None = None


Ttl = Annotated[
    float | None, typer.Option("--ttl", help="Seconds until the constraint ends by itself.")
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


def _usage(exc: UsageError) -> typer.BadParameter:
    return typer.BadParameter(str(exc))


@app.command()
@broker_options
def status(
    ctx: typer.Context,
    json_output: Json = False,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Engines online/offline and the constraints in force.

    Example: cascade status --host broker.example
    """
    state = WatchState()

    async def snapshot(connector: Any) -> None:
        state.prefix = connector.topic_prefix
        await connector.subscribe(status_filter(connector.topic_prefix), state.apply)
        await connector.subscribe(constraints_filter(connector.topic_prefix), state.apply)

    _run(ctx, broker, snapshot)
    if json_output:
        typer.echo(json.dumps(_status_json(state)))
        return
    console = _console(ctx)
    console.print(engines_table(state))
    console.print(constraints_table(state))


def _status_json(state: WatchState) -> dict[str, Any]:
    engines = [
        {"source": e.source, **json.loads(encode_payload(e.status)), "last_seen": e.last_seen}
        for e in state.engines.values()
    ]
    constraints = [
        {"topic": topic, **json.loads(encode_payload(c))} for topic, c in state.active_constraints()
    ]
    return {"engines": engines, "constraints": constraints}


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
    _run(ctx, broker, lambda c: publish_confirmed(c, [message], broker.timeout))
    typer.echo(f"paused {scope}" + (f" for {ttl:g}s" if ttl else ""))


@app.command()
@broker_options
def limit(
    ctx: typer.Context,
    scope: Scope,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="At most N tasks running at once.")
    ] = None,
    rate: Annotated[
        str | None, typer.Option("--rate", help="At most R task starts: '10/m', '0.5/s', '2/h'.")
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
    _run(ctx, broker, lambda c: publish_confirmed(c, list(messages), broker.timeout))
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
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many telemetry messages.")
    ] = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """A live view of runs, their tasks, the engines and the constraints in force.

    Ends on Ctrl-C. Examples: cascade watch; cascade watch --project etl --json | jq .
    """
    console = _console(ctx)
    as_json = json_output or not console.is_terminal
    state = WatchState()

    async def follow(connector: Any) -> None:
        prefix = connector.topic_prefix
        state.prefix = prefix
        done = asyncio.Event()
        seen = 0

        def on_message(message: Message) -> None:
            nonlocal seen
            state.apply(message)
            if as_json:
                line = {
                    "topic": message.topic,
                    "retain": message.retain,
                    "payload": message.payload,
                }
                console.print_json(json.dumps(line), indent=None)
            if "/telemetry/" in message.topic:
                seen += 1
                if count is not None and seen >= count:
                    done.set()

        filters = [
            telemetry_filter(project_id=project, run_id=run_id, prefix=prefix),
            status_filter(prefix),
            constraints_filter(prefix),
        ]
        for topic_filter in filters:
            await connector.subscribe(topic_filter, on_message)
        if as_json:
            await _wait(done, duration)
            return
        with Live(render_watch(state), console=console, refresh_per_second=4) as live:
            refresher = asyncio.create_task(_refresh(live, state))
            try:
                await _wait(done, duration)
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
            live.update(render_watch(state))

    with contextlib.suppress(KeyboardInterrupt):
        _run(ctx, broker, follow)


async def _wait(done: asyncio.Event, duration: float | None) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        async with bounded(duration):
            await done.wait()


async def _refresh(live: Live, state: WatchState) -> None:
    while True:
        live.update(render_watch(state))
        await asyncio.sleep(0.25)


@app.command()
@broker_options
def demo(
    ctx: typer.Context,
    tasks: Annotated[
        int, typer.Option("--tasks", min=8, max=500, help="Roughly how many tasks.")
    ] = 24,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Run a sample workflow and watch it live: parallel tasks, a retry, a failure, a rate-limited
    group, and a pause and resume sent over the broker.

    Without --host it starts an embedded MQTT broker in this process.
    Example: cascade demo --tasks 40
    """
    from ._demo import run_demo

    context = _context(ctx)
    console = _console(ctx)
    try:
        planned = asyncio.run(run_demo(broker, tasks, context.connector_factory, console))
    except ConnectorError as exc:
        raise _fail(str(exc)) from None
    if not planned:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `cascade` console script."""
    app(obj=CliContext(), prog_name="cascade")


# Registered here, built elsewhere: the dashboard's web stack is an optional extra.
app.command(name="dashboard")(broker_options(_dashboard_command))
