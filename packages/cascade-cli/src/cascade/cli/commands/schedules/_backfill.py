"""`cascade backfill NAME --from --to`: a schedule's past slots started, each once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated

import typer

from cascade.control import Controller
from cascade.control.schedules import BACKFILL_MAX, ScheduleView
from cascade.interfaces import Connector
from cascade.interfaces.serving import StartReply
from cascade.interfaces.wire import slot_request_id
from cascade.runtime import Schedule

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import CliContext, fail, usage
from ...plumbing._operator import As, Reason, operator_name
from ..start._command import JsonReply, Org, Project

__all__ = ["backfill"]


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise usage(ValueError(f"{text!r} is no ISO date and time"), option=option) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _slots(view: ScheduleView, start: datetime, end: datetime) -> list[datetime]:
    """The slots of ``view``'s schedule from ``start`` to ``end``, both included (one more than
    the bound, to say the range is too wide)."""
    said = view.schedule
    if said.cron:
        schedule = Schedule(cron=said.cron, tz=said.tz or "UTC")
    else:
        schedule = Schedule(every=timedelta(seconds=said.every))
    slots = []
    for slot in schedule.slots(start - timedelta(seconds=1), end):
        slots.append(slot)
        if len(slots) > BACKFILL_MAX:
            break
    return slots


@broker_options
def backfill(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule (cascade schedules lists them).")],
    start: Annotated[
        str, typer.Option("--from", help="The first slot's earliest time (ISO; UTC if naive).")
    ],
    end: Annotated[
        str, typer.Option("--to", help="The last slot's latest time (ISO; UTC if naive).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the slots and their request ids; start none.")
    ] = False,
    reason: Reason = None,
    operator: As = None,
    json_output: JsonReply = False,
    org: Org = None,
    project: Project = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Start a schedule's past slots, each once, at most 100.

    Start the slots of schedule NAME from --from to --to (both included), oldest first, each
    as a start request named by its slot (sched-NAME-SLOT) to an online server of the
    schedule, which claims the slot as its clock would: a slot claimed before (fired by the
    clock, or backfilled already) is not started again. At most 100 slots a backfill.

    Exit 0 when every slot started or was claimed already; 1 when one was refused otherwise
    (a full server, say), when nobody serves the schedule or no answer came; 2 for bad input
    (a range of more than 100 slots).
    Examples: cascade backfill nightly --from 2026-11-01 --to 2026-11-07 --dry-run
    """
    first, last = _moment(start, "--from"), _moment(end, "--to")
    if last < first:
        raise usage(ValueError("--to is before --from"), option="--to")
    by = operator_name(operator, broker.username)

    async def run(connector: Connector) -> tuple[list[datetime], list[StartReply]]:
        control = Controller(connector, issued_by=by, timeout=broker.timeout)
        views = await control.schedules()
        found = [
            v
            for v in views
            if v.name == name and org in (None, v.org_id) and project in (None, v.project_id)
        ]
        slots = _slots(found[0], first, last) if found else []
        if dry_run or not found or len(slots) > BACKFILL_MAX:
            return slots, []
        return slots, await control.backfill(name, slots, reason=reason, org=org, project=project)

    slots, replies = CliContext.of(ctx).run(broker, run)
    if len(slots) > BACKFILL_MAX:
        raise usage(
            ValueError(f"more than {BACKFILL_MAX} slots from {first} to {last}: narrow the range"),
            option="--from",
        )
    if dry_run:
        _say_planned(name, slots, json_output)
        return
    if not replies:
        if not slots:
            typer.echo(f"no slot of {name} from {first.isoformat()} to {last.isoformat()}")
            return
        raise fail(f"no online process serves schedule {name} (cascade schedules lists them)")
    _say_done(slots, replies, json_output)


def _say_planned(name: str, slots: list[datetime], json_output: bool) -> None:
    if json_output:
        listed = [{"slot": s.isoformat(), "request_id": slot_request_id(name, s)} for s in slots]
        typer.echo(json.dumps({"slots": listed}))
        return
    for slot in slots:
        typer.echo(f"{slot.isoformat()}  {slot_request_id(name, slot)}")
    typer.echo(f"{len(slots)} slots would start (--dry-run: none started)")


def _say_done(slots: list[datetime], replies: list[StartReply], json_output: bool) -> None:
    refused = [r for r in replies if not r.started and "claimed already" not in (r.error or "")]
    if json_output:
        listed = [
            {
                "slot": s.isoformat(),
                "outcome": r.outcome,
                "run_id": r.run_id,
                "source": r.source,
                "error": r.error,
            }
            for s, r in zip(slots, replies, strict=True)
        ]
        typer.echo(json.dumps({"slots": listed}))
    else:
        for slot, reply in zip(slots, replies, strict=True):
            if reply.started:
                said = f"started run {(reply.run_id or '')[:12]} on {reply.source}"
            else:
                said = reply.error or reply.outcome
            typer.echo(f"{slot.isoformat()}  {said}")
    if refused:
        raise typer.Exit(1)
