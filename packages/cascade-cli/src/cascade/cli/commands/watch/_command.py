"""`cascade watch`: a live view of runs, their tasks, the engines and the constraints in force."""

from __future__ import annotations

from typing import Annotated

import typer

from cascade.reader import DEFAULT_KEEP_RUNS

from ...plumbing._broker import DEFAULT_BROKER, MAX_COUNT, BrokerOptions, StopAfter, broker_options
from ...plumbing._history_db import Db
from ...plumbing._place import PlaceOrg, PlaceProject
from ...plumbing._view_options import (
    DEFAULT_FLEET_THRESHOLD,
    DEFAULT_KEEP_FOR_AGE,
    DEFAULT_OFFLINE_MAX_AGE,
    FleetThreshold,
    KeepFor,
    KeepRuns,
    OfflineMaxAge,
    ShowAll,
)

__all__ = ["watch"]


@broker_options
def watch(
    ctx: typer.Context,
    org: PlaceOrg = None,
    project: PlaceProject = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run id.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON line per message (default when piped).")
    ] = False,
    duration: StopAfter = None,
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
    fleet_threshold: FleetThreshold = DEFAULT_FLEET_THRESHOLD,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """A live view of runs, their tasks, engines and constraints.

    A live view of runs, their tasks, the engines and the constraints in force.

    --org ORG, --project ORG/PROJECT: only that org's or project's runs and summaries (a
    login over less than global must name its own: the broker refuses the others).

    Without --project or --run, once the engines' summaries count --fleet-threshold live
    runs it stops reading the runs' events and shows the fleet from the summaries (fleet
    mode) until they count fewer than 80 % of it; --json prints a {"mode": ...} line at
    each change. Ends on Ctrl-C.

    --run of a run that is not live: if the history (--db, else the default one `cascade
    record` writes) has it as ended, it says so and shows its final state as `cascade run`
    does, at once; else after 6 s with nothing heard of it, what the history has of it, or
    the end its engine's summary says; with neither, that it is not live (exit 1). With
    --json, nothing heard for 6 s is said on stderr with the broker it is connected to.

    Examples: cascade watch; cascade watch --project acme/etl --json | jq .
    """
    from ._watch import show_watch  # the work, imported when it runs

    show_watch(
        ctx,
        org,
        project,
        run_id,
        json_output,
        duration,
        count,
        show_all,
        offline_max_age,
        keep_runs,
        keep_for,
        fleet_threshold,
        db,
        broker,
    )
