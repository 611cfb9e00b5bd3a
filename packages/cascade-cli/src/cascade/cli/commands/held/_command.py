"""`cascade held`: the tasks held for a decision, fleet-wide, from the live telemetry."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cascade.control.run_ids import live_wait
from cascade.reader import ReaderModel

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext
from ...plumbing._place import PlaceOrg, PlaceProject, read_place
from ...plumbing._view_options import Json
from ...rendering._fit import print_fitted
from ...rendering._render import refused_lines
from ...rendering._times import TimeFormat
from ._held import HeldFilters, incomplete_said, listen_for_held
from ._held_view import held_json, held_table

__all__ = ["HeldTaskGlob", "HeldError", "held"]

HeldTaskGlob = Annotated[
    str | None,
    typer.Option("--task", help="Only the tasks of this id, or whose name matches this glob."),
]
HeldError = Annotated[
    str | None,
    typer.Option("--error", help="Only the tasks whose error holds this text (any case)."),
]


@broker_options
def held(
    ctx: typer.Context,
    json_output: Json = False,
    org: PlaceOrg = None,
    project: PlaceProject = None,
    task: HeldTaskGlob = None,
    error: HeldError = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """The tasks held for a decision, fleet-wide.

    The tasks held for a decision, fleet-wide: each with its run, attempt, error, age,
    deadline and default, and what waits in its run.

    It asks the live runs the engines' summaries list for their state (their held tasks and
    errors), at once; only when the summaries may not list every live run, it
    listens to the live telemetry for one heartbeat period (5 s, at most --timeout) too. Decide with
    `cascade retry|skip|complete|fail RUN TASK`, or on every match with
    `cascade retry|skip|fail --held [filters]`.
    A login over less than global lists its org's (--org ORG) or project's (--project
    ORG/PROJECT): the broker refuses it the others, and the command says so (exit 1).
    Examples: cascade held --org acme; cascade held --task 'load_*' --error timeout --json
    """
    place = read_place(org, project)
    filters = HeldFilters(place.org, place.project, task, error)
    state = ReaderModel(keep_runs=None, keep_for=None)

    partial: list[str] = []

    async def listen(connector: Any) -> None:
        partial.extend(await listen_for_held(connector, state, filters, broker.timeout))

    window = live_wait(broker.timeout)
    looked_for = f"no run's telemetry within {window:g} s (is it the engines' broker?)"
    CliContext.of(ctx).run(broker, listen, if_silent=looked_for)
    found = filters.picked(state)
    now = state.clock()
    if json_output:
        listed: dict[str, Any] = {"held": [held_json(item, now) for item in found]}
        if partial:
            listed["incomplete"] = partial
        typer.echo(json.dumps(listed))
    elif not found and not partial:
        typer.echo("no task is held for a decision" + (" that matches" if task or error else ""))
    elif found:
        console = CliContext.of(ctx).out()
        print_fitted(console, *held_table(found, TimeFormat(now), console.width))
    for line in refused_lines(state):  # a forged answer among them
        typer.echo(f"cascade: {line.plain}", err=True)
    if partial:
        said = incomplete_said(partial, broker.timeout)
        typer.echo(f"cascade: {said}; try a longer --timeout", err=True)
        raise typer.Exit(1)
