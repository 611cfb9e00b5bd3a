"""`cascade logs RUN [TASK]`: what a run's tasks logged, from the history, and with -f live as
it arrives."""

from __future__ import annotations

from typing import Annotated

import typer

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._export import Export
from ...plumbing._history_db import SINCE_HELP, Db
from ...plumbing._place import PlaceOrg, PlaceProject, read_place

__all__ = ["LEVEL_HELP", "logs"]

LEVEL_HELP = "Only lines of LEVEL or above: debug, info, warning, error, critical, or a number."
"""``--level``'s help."""


@broker_options
def logs(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN", help="The run's id, or a prefix only it has.")
    ],
    task: Annotated[
        str | None,
        typer.Argument(
            metavar="[TASK]", help="Only this task's lines: its id, or a name or glob ('load_*')."
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print the lines live as they arrive (after the recorded ones, if any) until "
            "the run stops.",
        ),
    ] = False,
    db: Db = None,
    level: Annotated[str | None, typer.Option("--level", metavar="LEVEL", help=LEVEL_HELP)] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="AGE", help=f"{SINCE_HELP} (default: all).")
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per line: the line's fields, its run_id and source."
        ),
    ] = False,
    export: Export = None,
    org: PlaceOrg = None,
    project: PlaceProject = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """What a run's tasks logged: recorded, or live with -f.

    What a run's tasks logged: the lines the history recorded (--db, else the default one
    `cascade record` writes), or with -f the live ones as they arrive, like tail -f.

    -f prints the recorded lines first (when there is a history), then the live ones after
    them, and ends by itself (exit 0) a moment after the run's engine says it stopped (its
    ENGINE_STOPPED event: the logs have no end of their own), or on Ctrl-C. A prefix of the
    run's id is looked up as `cascade cancel` does: in the engines' summaries and the
    history, then (only when they do not name it) among the runs heard live within 5 s (at
    most --timeout); one that several runs have exits 2, one that none has exits 1. Nothing
    heard for a few seconds, it says on stderr which broker it is connected to and what it
    waits for. Lines the engine dropped are said where they are
    missing; lines the history lacks (lost on the way, or before a recorder listened) are
    said after the recorded ones; at the run's end, how many of the lines its engine counts
    never reached it (logged before it listened, with no history that has them). A task
    that logged nothing is said on stderr (exit 0); a TASK the run does not have exits 1.

    Examples: cascade logs 58a88765; cascade logs 58a88765 'load_*' --level warning;
    cascade logs 58a88765cea2 -f --json | jq .message;
    cascade logs 58a88765 --format csv > logs.csv

    --format exports the recorded lines (not with -f: --json streams the live ones).
    With -f, --org ORG or --project ORG/PROJECT: the run is looked for and followed there only
    (a login over less than global must give its own).
    """
    from ._logs import print_logs  # the work, imported when it runs

    place = read_place(org, project)
    print_logs(ctx, run_id, task, follow, db, level, since, json_output, export, broker, place)
