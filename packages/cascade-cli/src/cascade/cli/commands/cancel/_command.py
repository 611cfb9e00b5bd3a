"""`cascade cancel`: a run stopped by its engine, which says what it stopped."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from cascade.control import Cancel, CancelAnswer, Controller
from cascade.control.run_ids import Recorded, is_full, short_id
from cascade.reader import Place

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext, fail
from ...plumbing._history_db import Db
from ...plumbing._operator import As, Reason, Witness, operator_name, witness_login
from ...plumbing._run_lookup import no_run_named, recorded_run, recorded_run_ids, run_named
from ._cancel_said import RefusalsSaid

__all__ = ["cancel"]


@broker_options
def cancel(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(help="The run's id (32 hex digits) or a prefix only one run has."),
    ],
    reason: Reason = None,
    operator: As = None,
    witness: Witness = False,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="The run's org, where the history does not name it: the cancel's topic names "
            "it (a broker ACL lets you cancel in your orgs only), and the engine answers on a "
            "topic of it.",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="The run's project, where the history does not name it (the cancel's topic "
            "names it). Without --org and --project, the run is first heard on its telemetry.",
        ),
    ] = None,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Cancel a run: its engine stops it and says what it stopped.

    Cancel a run: the engine running it stops it, and says what it stopped.

    Running coroutine tasks are cancelled; plain-function tasks already in threads finish.
    A prefix is looked up in the engines' summaries and the history (--db, or the default
    one if it exists), at once; only when they do not name the run, among the runs heard
    live within 5 s (at most --timeout), saying so; one that several runs have exits 2.
    Only the run's own engine is listened to: the one the history recorded it from, else
    the first heard on its telemetry; an answer from another source is refused (said on
    stderr), and without one from its engine the command exits 1.
    Examples: cascade cancel 58a88765cea2 --reason "wrong input"
    """
    asked = Cancel(run_id=run_id, reason=reason, org=org, project=project)
    wanted = asked.run_id
    by, login = operator_name(operator, broker.username), witness_login(witness, broker.username)
    recorded = Recorded() if is_full(wanted) else recorded_run_ids(db, wanted)
    said = RefusalsSaid()

    async def ask(connector: Any) -> CancelAnswer | None:
        place = Place(org, project)  # what a login over less than global may look in
        target = await run_named(connector, wanted, recorded, broker.timeout, place)
        if target is None:
            return None
        recorded_run_of = await asyncio.to_thread(recorded_run, db, target)
        owner, run_org, run_project = (
            recorded_run_of if recorded_run_of is not None else (None, org, project)
        )
        control = Controller(connector, issued_by=by, timeout=broker.timeout, login=login)
        run = control.run(target, owner=owner, org=run_org, project=run_project, on_refused=said)
        return await run.cancel(reason=asked.reason)

    waiting_for = (
        f"the answer of the engine of run {short_id(wanted)} (at most {broker.timeout:g} s)"
    )
    answer = CliContext.of(ctx).run(broker, ask, waiting_for=waiting_for)
    if answer is None:
        raise no_run_named(wanted, recorded, broker.timeout)
    if answer.unlocated:
        raise fail(answer.unanswered(broker.timeout))
    if answer.reply is None:
        raise fail(
            f"{answer.unanswered(broker.timeout)}: it has ended, it runs on another broker, "
            "or its engine is not connected"
        )
    said.rest(answer.refused)
    typer.echo(answer.describe())
