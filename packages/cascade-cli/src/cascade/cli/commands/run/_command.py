"""`cascade run RUN_ID`: one recorded run, its summary, then its tasks (those --state and --task
pick, --limit of them; a map's items folded into its row unless --items), from the history
database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from ...plumbing._context import CliContext, UsageError
from ...plumbing._history_db import Db, Json, gone, history_line, opened_run, query, task_pages
from ...rendering._render import STATE_STYLES, TimeFormat
from ._run import echo_run_json, picked_text, print_run

if TYPE_CHECKING:
    from cascade.history import History

__all__ = ["DEFAULT_LIMIT", "TASK_STATES", "run", "show_recorded_run", "task_states"]

DEFAULT_LIMIT = 20
"""The tasks `cascade run` lists without --limit: about a screenful under its summary."""
TASK_STATES = tuple(STATE_STYLES)
"""The states a task is shown in, in the order its counts are."""


def task_states(values: list[str] | None) -> list[str] | None:
    """``--state``'s values (repeated, or comma lists, in any case) as the states they name,
    each once; ``None`` without any; :class:`UsageError` for a name that is no state."""
    if not values:
        return None
    named: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper()
            if name not in TASK_STATES:
                known = ", ".join(state.lower() for state in TASK_STATES)
                raise UsageError(f"unknown task state {part.strip()!r}: use one of {known}")
            if name not in named:
                named.append(name)
    return named


def run(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run's id, or a prefix only it has.")
    ],
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            metavar="STATE",
            help="Only tasks last in STATE: running, completed, failed, skipped, blocked, "
            "held (for a decision), retrying or cancelled (any case; repeat it, or a comma "
            "list).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task", metavar="GLOB", help="Only tasks named GLOB: a name, or 'load_*' (fnmatch)."
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=0,
            help=f"At most N tasks; 0: all (default: {DEFAULT_LIMIT}; with --json, all).",
            metavar="N",
        ),
    ] = None,
    items: Annotated[
        bool,
        typer.Option(
            "--items",
            help="List maps' items (transform-7[3]) and loops' iterations (counter-4@7) as "
            "tasks of their own; without it, each map's, each loop's row stands for them, "
            "counted by state (--state and --task pick them as any task; --json lists them).",
        ),
    ] = False,
    map_id: Annotated[
        str | None,
        typer.Option(
            "--map",
            metavar="TASK_ID",
            help="Only the items of the map TASK_ID (transform-7: its row expanded), or the "
            "iterations of the loop TASK_ID (counter-4), those --state and --task pick.",
        ),
    ] = None,
    json_output: Json = False,
    db: Db = None,
) -> None:
    """One recorded run: its summary, then its tasks.

    One recorded run: its tasks counted by state, its slowest tasks and first failures
    (the first one's traceback, each one's attempts), its tasks held for a decision and the
    decisions taken (who, why, on which attempt, applied or refused), then its tasks with their
    states and times, attempts, duration, time held, error; a map's (task.map) one row with its
    items counted by state, a loop's (cs.Jump) one row with its iterations counted and its
    latest.

    Examples: cascade run 58a88765cea2; cascade run 58a88765 --state failed --limit 0;
    cascade run 58a88765 --map transform-7 --state failed;
    cascade run 58a88765 --json | jq '.tasks[].state'
    """
    states = task_states(state)
    shown = limit if limit is not None else (0 if json_output else DEFAULT_LIMIT)
    history, found = opened_run("run", db, run_id)
    try:
        show_recorded_run(
            CliContext.of(ctx),
            history,
            found,
            limit=shown,
            states=states,
            task=task,
            items=items,
            map_id=map_id,
            json_output=json_output,
        )
    finally:
        history.close()


def show_recorded_run(
    context: CliContext,
    history: History,
    run_id: str,
    *,
    limit: int = DEFAULT_LIMIT,
    states: list[str] | None = None,
    task: str | None = None,
    items: bool = False,
    map_id: str | None = None,
    json_output: bool = False,
) -> None:
    """Print the recorded run ``run_id`` (its whole id) as `cascade run` does: its summary,
    then ``limit`` of its tasks (0: all) that ``states`` and ``task`` (a glob) pick, each map's
    items (each loop's iterations) folded into its row unless ``items`` or a filter; only the
    items of the map (the iterations of the loop) ``map_id`` when given; as JSON with
    ``json_output`` (every task picked, items too, and the maps and loops in its summary).
    Exit 1 if the history no longer has it."""
    from cascade.history import TASKS_PAGE

    most = limit or None  # None: every task
    size = min(TASKS_PAGE, most or TASKS_PAGE)
    listed = items or json_output  # JSON lists every task picked, as it always did
    report = query(
        lambda: history.report(
            run_id, limit=size, states=states, name_glob=task, items=listed, item_of=map_id
        )
    )
    if report is None:
        raise gone(history, run_id)
    pages = task_pages(
        history,
        report.detail,
        limit=most,
        states=states,
        name_glob=task,
        items=not (report.folded or report.folded_iterations),
        item_of=map_id,
    )
    if json_output:
        echo_run_json(pages, report)
    else:
        console = context.out()
        loop = any(entry.task_id == map_id for entry in report.loops)
        picked = picked_text(states, task, map_id, loop=loop)
        print_run(console, pages, report, TimeFormat(time.time()), picked)
        console.print(history_line(history), soft_wrap=True)
