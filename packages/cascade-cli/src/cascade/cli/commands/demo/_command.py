"""`cascade demo`: a sample workflow and its live view (the workflow is in ``_demo``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cascade.connector_kit import default_org_id, default_project_id

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options, finite
from ...plumbing._context import CliContext

__all__ = ["demo"]


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

    # the demo's engine reads them: refused (InvalidIdError, exit 2) before anything starts
    default_org_id()
    default_project_id()
    context = CliContext.of(ctx)
    console = CliContext.of(ctx).out()
    planned = asyncio.run(run_demo(broker, tasks, context.connector_factory, console, duration))
    if not planned:
        raise typer.Exit(1)
