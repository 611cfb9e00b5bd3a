"""A start or a rerun as the commands send it: to a process serving the workflow, its answer
said, and with `--wait` the run's end awaited (listened to from before the request, so that a
short run's end is not missed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer

from cascade.control import Controller, Refusal, RunEnds, Served, Start, wait_run
from cascade.control.run_ids import short_id
from cascade.interfaces import SubscriptionHandle
from cascade.interfaces.serving import StartReply
from cascade.interfaces.wire import RunStatus
from cascade.reader import inert

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, fail
from ..cancel._cancel_said import RefusalsSaid
from ._said import print_plan, reply_json, said_refused, said_started

__all__ = ["Asked", "ask"]


@dataclass(frozen=True)
class Asked:
    """What a start or rerun command was given: the checked ``request`` (the process it
    names, the org and project whose processes may take it), who it is ``issued_by``,
    whether it waits for the run's end, prints JSON, and says ``what`` it asked (``start``,
    ``rerun``)."""

    request: Start
    issued_by: str
    wait: bool
    json_output: bool
    what: str


class _Refusals:
    """Says the refused answers as `cascade cancel` does, and counts them all."""

    def __init__(self) -> None:
        self.said = RefusalsSaid()
        self.count = 0

    def __call__(self, refusal: Refusal) -> None:
        self.count += 1
        self.said(refusal)


def ask(ctx: typer.Context, broker: BrokerOptions, asked: Asked) -> None:
    """Send the request, say the answer; exit 1 when refused or unanswered, and with
    `--wait` when the run failed or its end could not be heard."""
    refusals = _Refusals()

    async def job(connector: Any) -> tuple[StartReply, RunStatus | None]:
        ends = RunEnds(connector.topic_prefix) if asked.wait else None
        handles: list[SubscriptionHandle] = []

        async def listen(servers: list[Served]) -> None:
            if ends is not None:
                runs_of = {(s.announcement.org_id, s.announcement.project_id) for s in servers}
                for org, project in sorted(runs_of):
                    handles.append(await ends.listen(connector, org, project))

        control = Controller(connector, issued_by=asked.issued_by, timeout=broker.timeout)
        reply = await control.send(asked.request, on_refused=refusals, before_send=listen)
        if ends is None or not reply.started or reply.run_id is None:
            return reply, None
        if not asked.json_output:
            typer.echo(said_started(reply))
        try:
            status = await wait_run(connector, reply.run_id, owner=reply.source, ends=ends)
        finally:
            for source in sorted(ends.refusals.by_source)[:5]:  # a forger may invent many
                typer.echo(
                    f"cascade: refused run ends claiming {inert(source, 200)}: "
                    f"{ends.refusals.describe(source)}",
                    err=True,
                )
        return reply, status

    # with --wait, for as long as the run runs: its events are all that is heard of it
    waiting_for = "the answer of a serving process, then the end of the run it starts (Ctrl-C ends)"
    reply, status = CliContext.of(ctx).run(
        broker, job, waiting_for=waiting_for if asked.wait else None
    )
    refusals.said.rest(refusals.count)
    _say(ctx, asked, reply, status)


def _say(ctx: typer.Context, asked: Asked, reply: StartReply, status: RunStatus | None) -> None:
    if asked.json_output:
        typer.echo(reply_json(reply, status))
    elif reply.outcome == "planned":
        print_plan(CliContext.of(ctx).out(), reply)
    elif reply.started and status is None:
        typer.echo(said_started(reply))
    elif status is not None:
        typer.echo(f"run {short_id(reply.run_id or '')} {status}")
    if reply.outcome == "refused":
        if asked.json_output:
            raise typer.Exit(1)
        raise fail(said_refused(reply, asked.what))
    if status == "Failed":
        raise typer.Exit(1)
