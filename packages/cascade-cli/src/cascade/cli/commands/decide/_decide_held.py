"""`cascade retry|skip|fail --held`: the decision on every held task that the filters pick
(`retry` none of the gates: they have no attempt to retry), each at the attempt held (so that
a task that failed again since is not decided blind), one line per outcome. When some run's
list of held tasks did not come whole, nothing is decided unless the operator allows it: "every
match" would have been some of them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from cascade.control import DecisionAnswer
from cascade.control.run_ids import short_id
from cascade.reader import SHOWN, HeldTask, ReaderModel, inert

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, fail
from ..cancel._cancel_said import RefusalsSaid
from ..held._held import HeldFilters, incomplete_said, listen_for_held
from ..held._held_view import held_json
from ._decide import Asked, answer_json, said_answer

__all__ = ["decide_held"]

_AT_ONCE = 16  # decisions in flight at once (each waits for its engine's answer)


def _dry_line(asked: Asked, held: HeldTask) -> str:
    attempt = f", attempt {held.attempt}" if held.attempt is not None else ""
    error = f": {inert(held.error, SHOWN['error'])}" if held.error else ""
    return (
        f"would {asked.decision} {inert(held.name, SHOWN['name'])} "
        f"({inert(held.task_id, SHOWN['name'])}{attempt}) of run {short_id(held.run_id)} on "
        f"{inert(held.source, SHOWN['source'])}{error}"
    )


def decide_held(
    ctx: typer.Context,
    asked: Asked,
    filters: HeldFilters,
    dry_run: bool,
    allow_incomplete: bool,
    broker: BrokerOptions,
) -> None:
    """List the held tasks ``filters`` pick (as `cascade held` does) and send the decision on
    each (or, ``dry_run``, say what would be); exit 0 only when every one was applied. When
    some run's answer did not come whole, decide nothing (on those found: ``allow_incomplete``)
    and exit 1."""
    state = ReaderModel(keep_runs=None, keep_for=None)
    said = RefusalsSaid()
    partial: list[str] = []

    async def job(connector: Any) -> tuple[list[HeldTask], list[DecisionAnswer]]:
        partial.extend(await listen_for_held(connector, state, filters, broker.timeout))
        if partial and not allow_incomplete:
            return [], []
        found = filters.picked(state)
        if asked.decision == "retry":  # a gate has no attempt to retry: its engine refuses it
            found = [held for held in found if not held.awaits_approval]
        if dry_run:
            return found, []
        limit = asyncio.Semaphore(_AT_ONCE)
        control = asked.controller(connector, broker.timeout)

        async def one(held: HeldTask) -> DecisionAnswer:
            run = control.run(
                held.run_id,
                owner=held.source,
                org=held.org_id,
                project=held.project_id,
                on_refused=said,
            )
            async with limit:
                return await asked.send(run, held.task_id, held.attempt)

        return found, list(await asyncio.gather(*(one(held) for held in found)))

    found, answers = CliContext.of(ctx).run(broker, job)
    if partial and not allow_incomplete:
        raise fail(
            f"{incomplete_said(partial, broker.timeout)}; decided nothing: try a longer "
            "--timeout, or --allow-incomplete to decide on those found"
        )
    if dry_run:
        for held in found:
            if asked.json_output:
                row = {**held_json(held, state.clock()), "decision": asked.decision}
                typer.echo(json.dumps(row))
            else:
                typer.echo(_dry_line(asked, held))
    if partial:
        done = "would decide on" if dry_run else "decided on"
        typer.echo(
            f"cascade: {incomplete_said(partial, broker.timeout)}; {done} those found", err=True
        )
    if not found:
        typer.echo("cascade: no task is held for a decision that matches", err=True)
        if partial:
            raise typer.Exit(1)
        return
    said.rest(sum(answer.refused for answer in answers))
    not_applied = 0
    for answer in answers:
        applied, line = said_answer(answer, broker.timeout)
        not_applied += not applied
        if asked.json_output:
            typer.echo(json.dumps(answer_json(answer)))
        else:
            typer.echo(("" if applied else "not applied: ") + line)
    if not_applied:
        raise fail(f"{not_applied} of {len(answers)} decisions not applied")
    if partial:
        raise typer.Exit(1)
