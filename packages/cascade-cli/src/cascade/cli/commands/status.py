"""`cascade status`: the engines online and offline, and the constraints in force."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..plumbing._broker import DEFAULT_BROKER, MAX_TIMEOUT, BrokerOptions, broker_options, finite
from ..plumbing._context import CliContext
from ..plumbing._place import PlaceOrg, PlaceProject, read_place
from ..plumbing._view_options import (
    DEFAULT_OFFLINE_MAX_AGE,
    STATUS_JSON_ENGINES,
    Json,
    OfflineMaxAge,
    ShowAll,
    offline_cutoff,
)

__all__ = ["status"]


@broker_options
def status(
    ctx: typer.Context,
    json_output: Json = False,
    show_all: ShowAll = False,
    offline_max_age: OfflineMaxAge = DEFAULT_OFFLINE_MAX_AGE,
    every_engine: Annotated[
        bool,
        typer.Option(
            "--every-engine",
            help=f"With --json, list every engine (by default the {STATUS_JSON_ENGINES:,} "
            "that need a look first, beyond that many).",
        ),
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            metavar="GLOB",
            help="List only the engines whose source matches GLOB (host-1, 'gpu-*').",
        ),
    ] = None,
    rollcall_wait: Annotated[
        float | None,
        typer.Option(
            "--rollcall-wait",
            metavar="SECONDS",
            min=0.0,
            max=MAX_TIMEOUT,
            callback=finite,
            help="Where the broker keeps statuses only for their exact topics (RabbitMQ, "
            "NATS), how long the engines have to answer the roll call (default: 1 s, at most "
            "--timeout): more for a loaded machine or a large fleet.",
        ),
    ] = None,
    org: PlaceOrg = None,
    project: PlaceProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Engines online/offline and the constraints in force.

    At fleet size it lists the engines that need a look first (a conflict, stranded runs, the
    most live runs and failures) and says how many more there are: --json lists at most
    1,000 of them (--every-engine: all), the tables 200; --engine GLOB picks some by source.
    Where the broker sends no retained status to a wildcard subscription (RabbitMQ, NATS), it
    lists the engines online that answer its roll call within --rollcall-wait. With --org or
    --project it reads the engines' summaries of that org or project only (without their
    figures, which add up every org's): what a login over less than global may read.

    Example: cascade status --host broker.example
    """
    # what it runs with, imported when it runs (its --help needs none of it)
    import asyncio

    from cascade.reader import ROLLCALL_WAIT, ReaderModel, subscribe_statuses

    from ..plumbing._broker_lacks import STATUS_LACKS, say_what_the_broker_lacks
    from ..rendering._render import render_status
    from ..rendering._status_json import ascii_json, status_json

    hide_after = offline_cutoff(show_all, offline_max_age)
    place = read_place(org, project)
    state = ReaderModel()

    async def snapshot(connector: Any) -> None:
        state.prefix = connector.topic_prefix
        called = await subscribe_statuses(connector, state.apply, place=place)
        await connector.subscribe_constraints(state.apply)
        say_what_the_broker_lacks(called, STATUS_LACKS)
        if called:  # the roll call's answers: nothing says when all are in
            wait = min(ROLLCALL_WAIT, broker.timeout) if rollcall_wait is None else rollcall_wait
            await asyncio.sleep(wait)

    looked_for = (
        "no engine's status, summary or constraint is kept there (is it the engines' broker?)"
    )
    CliContext.of(ctx).run(broker, snapshot, if_silent=looked_for)
    if json_output:
        most = None if every_engine else STATUS_JSON_ENGINES
        typer.echo(ascii_json(status_json(state, hide_after, most=most, sources=engine)))
        return
    out = CliContext.of(ctx).out()
    out.print(render_status(state, offline_max_age=hide_after, engine=engine))
