"""`cascade rerun RUN`: a run of a served workflow run again by a process serving it, reusing
every stored result that still matches (or, with `--dry-run`, what it would do)."""

from __future__ import annotations

from typing import Annotated

import typer

from cascade.control import Start
from cascade.control.run_ids import MIN_RERUN_PREFIX, checked_prefix
from cascade.interfaces.wire import RerunMode

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext, UsageError
from ...plumbing._history_db import Db
from ...plumbing._operator import As, Reason, operator_name
from ...plumbing._place import read_place
from ..start._ask import Asked, ask
from ..start._command import JsonReply, On, Org, Project, Wait
from ..start._params import Params, parsed_params
from ._entrypoint import load_entrypoint
from ._here import HereRerun, rerun_here
from ._workflow import run_to_rerun, served_run

__all__ = ["rerun"]


@broker_options
def rerun(
    ctx: typer.Context,
    run: Annotated[
        str,
        typer.Argument(
            help=f"The run's id, or a prefix of at least {MIN_RERUN_PREFIX} hex digits only "
            "one run has."
        ),
    ],
    from_failure: Annotated[
        bool,
        typer.Option(
            "--from-failure",
            help="Run again what had not succeeded, and what changed (the default).",
        ),
    ] = False,
    from_task: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TASK",
            help="Also run again TASK (its id or name) and every task downstream of it.",
        ),
    ] = None,
    run_all: Annotated[
        bool, typer.Option("--all", help="Run every task again, reusing nothing.")
    ] = False,
    param: Params = None,
    workflow: Annotated[
        str | None,
        typer.Option(
            "--workflow",
            metavar="NAME",
            help="The served workflow the run ran, where the history does not say it.",
        ),
    ] = None,
    entrypoint: Annotated[
        str | None,
        typer.Option(
            "--entrypoint",
            metavar="PATH.py:FUNCTION",
            help="Rerun a plain script's run here, no serving process needed: import FUNCTION "
            "(a function that builds the workflow's target from its params, or a target) from "
            "PATH.py and run it with an engine of this command's own on the broker, reusing "
            "what the results store (--results) kept of RUN.",
        ),
    ] = None,
    results: Annotated[
        str | None,
        typer.Option(
            "--results",
            metavar="PATH_OR_URL",
            help="With --entrypoint: the results store the run's engine kept (Engine(results="
            "...)): a directory or an fsspec URL; default $CASCADE_RESULTS, else "
            "./.cascade-results.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List what would run, be reused or be forced, and why; start nothing.",
        ),
    ] = False,
    on: On = None,
    reason: Reason = None,
    operator: As = None,
    wait: Wait = False,
    json_output: JsonReply = False,
    org: Org = None,
    project: Project = None,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Rerun a served workflow's run, reusing results that match.

    Rerun a run of a served workflow: a new run that reuses every stored result whose
    fingerprint still matches and executes the rest. With --entrypoint PATH.py:FUNCTION, a
    plain script's run (or any run whose results are in --results) is rerun here instead:
    this command imports the workflow and runs it with an engine of its own on the broker
    (--wait is then implied; exit 1 when the rerun failed).

    The params are those the run ran with, updated by --param. RUN is looked up in the history
    (--db, or the default one if it exists), which also says the workflow it ran; else in the
    engines' summaries on the broker (of --org and --project only, when given, --project
    ORG/PROJECT naming both: a login over less than global must give them), where the
    process that ran it serves the workflow it is named after (the rerun then goes to that
    process, which keeps its results); else give --workflow. Exit 0 once acknowledged
    (--dry-run: once the plan came; --wait: once the run succeeded); 1 when refused (the
    run's results are not kept there, a rerun of it is live), unanswered within --timeout,
    or (--wait) failed; 2 for bad input.
    Examples: cascade rerun 58a88765cea2; cascade rerun 58a88765cea2 --from transform
    --dry-run; cascade rerun 58a88765cea2 --all --param day=tue --wait; cascade rerun
    58a88765cea2 --entrypoint etl.py:etl --results results --dry-run
    """
    mode = _mode(from_failure, from_task, run_all)
    prefix = checked_prefix(run)
    if len(prefix) < MIN_RERUN_PREFIX:
        raise UsageError(
            f"RUN: give at least {MIN_RERUN_PREFIX} hex digits of the run's id, not {run!r}"
        )
    if dry_run and wait:
        raise UsageError("--wait waits for a run: a --dry-run starts none")
    if entrypoint is not None:
        given = {
            "--workflow": workflow,
            "--on": on,
            "--reason": reason,
            "--as": operator,
            "--db": db,
        }
        served = [flag for flag, value in given.items() if value is not None]
        if served:
            raise UsageError(
                f"{', '.join(served)}: for a serving process's rerun; --entrypoint reruns "
                "the run here"
            )
        loaded = load_entrypoint(entrypoint)
        rerun_here(
            ctx,
            broker,
            HereRerun(
                run=prefix,
                entrypoint=loaded,
                params=parsed_params(param),
                mode=mode,
                from_task=from_task,
                results=results,
                dry_run=dry_run,
                json_output=json_output,
                org=org,
                project=project,
            ),
        )
        return
    if results is not None:
        raise UsageError("--results goes with --entrypoint (a serving process has its own)")
    place = read_place(org, project)  # --project ORG/PROJECT too, as the readers take it
    org, project = place.org, place.project
    found = run_to_rerun(db, prefix)
    if workflow is None and found.workflow is None:  # the process that ran it may say it
        # within the place: what a login over less than global may read
        heard = CliContext.of(ctx).run(
            broker, lambda c: served_run(c, found.run_id, broker.timeout, place)
        )
        found = heard or found
        on = on or found.source  # its manifest and results are where it ran
    named = workflow or found.workflow
    if named is None:
        raise UsageError(
            f"which served workflow run {run} ran is known neither to the history nor to the "
            "processes serving on the broker: give --workflow NAME (cascade served lists them)"
        )
    if workflow is not None and found.workflow not in (None, workflow):
        raise UsageError(f"run {run} ran {found.workflow}, not --workflow {workflow}")
    by = operator_name(operator, broker.username)
    request = Start(
        workflow=named,
        params=parsed_params(param),
        reason=reason,
        on=on,
        org=org,
        project=project,
        rerun_of=found.run_id,
        rerun=mode,
        from_task=from_task,
        dry_run=dry_run,
    )
    ask(ctx, broker, Asked(request, by, wait, json_output, "rerun"))


def _mode(from_failure: bool, from_task: str | None, run_all: bool) -> RerunMode:
    given = [
        flag
        for flag, on in (
            ("--from-failure", from_failure),
            ("--from", from_task is not None),
            ("--all", run_all),
        )
        if on
    ]
    if len(given) > 1:
        raise UsageError(
            f"give one of --from-failure, --from TASK and --all, not {' and '.join(given)}"
        )
    return "all" if run_all else "from" if from_task is not None else "failure"
