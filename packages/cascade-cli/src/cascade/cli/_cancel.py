"""`cascade cancel RUN_ID`: ask the engine running a run to cancel it, and wait for its answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

import typer

from cascade.interfaces import (
    CancelReply,
    CancelRequest,
    Connector,
    InvalidMessageError,
    Message,
    TaskRef,
    cancel_topic,
    decode_cancel_reply,
    new_request_id,
    reply_topic,
)
from cascade.interfaces.connector_kit import bounded

from ._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ._context import CliContext, UsageError, fail, usage
from ._history_db import Db
from ._inert import SHOWN, inert
from ._operator import As, Reason, checked_reason, operator_name
from ._publishing import publish_confirmed
from ._run_ids import (
    WHERE_FULL_IDS,
    Recorded,
    checked_prefix,
    heard_run_ids,
    is_full,
    live_wait,
    one_run,
    recorded_run_ids,
)

__all__ = ["cancel", "describe_reply", "request_cancel"]

_NAMES_SHOWN = 5


async def request_cancel(
    connector: Connector,
    run_id: str,
    *,
    issued_by: str | None,
    reason: str | None,
    timeout: float,
) -> CancelReply | None:
    """Ask the engine running ``run_id`` to cancel it; its answer, or ``None`` when none came
    within ``timeout`` seconds.

    Subscribes to the request's own reply topic first, then publishes the request (QoS 1,
    not retained: an engine that is away never gets it) and waits for the broker to take it
    (:func:`publish_confirmed`: under MQTT 5 a refusal raises), then for the answer.
    """
    request = CancelRequest(
        id=new_request_id(),
        run_id=run_id,
        issued_by=issued_by,
        reason=reason,
        issued_at=time.time(),
    )
    prefix = connector.topic_prefix
    answered: asyncio.Future[CancelReply] = asyncio.get_running_loop().create_future()

    def on_reply(message: Message) -> None:
        try:
            reply = decode_cancel_reply(message.raw or message.payload)
        except InvalidMessageError:
            return  # not an answer to anything (the topic is ours alone, but anyone may write)
        if reply.id == request.id and reply.run_id == run_id and not answered.done():
            answered.set_result(reply)

    handle = await connector.subscribe(reply_topic(request.id, prefix), on_reply)
    try:
        started = time.monotonic()
        topic = cancel_topic(run_id, prefix)
        await publish_confirmed(connector, [(topic, request)], timeout, retain=False)
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, timeout - (time.monotonic() - started))):
                return await answered
        return None
    finally:
        await handle.unsubscribe()


def _names(tasks: list[TaskRef], count: int) -> str:
    shown = ", ".join(inert(t.task_name, SHOWN["name"]) for t in tasks[:_NAMES_SHOWN])
    more = count - min(len(tasks), _NAMES_SHOWN)
    return shown + (f" and {more} more" if more > 0 else "")


def describe_reply(reply: CancelReply) -> str:
    """``cancelled run ID on SOURCE: 2 running tasks cancelled (a, b), 1 left to finish in its
    thread, its result discarded (c), 17 not started``."""
    source = inert(reply.source, SHOWN["source"])
    if reply.outcome == "already_cancelled":
        head = f"run {reply.run_id} on {source} was already cancelled"
    else:
        head = f"cancelled run {reply.run_id} on {source}"
    parts = [f"{reply.cancelled_count} running tasks cancelled"]
    if reply.cancelled_count:
        parts[0] += f" ({_names(reply.cancelled, reply.cancelled_count)})"
    if reply.abandoned_count:
        parts.append(
            f"{reply.abandoned_count} left to finish in their threads, results discarded "
            f"({_names(reply.abandoned, reply.abandoned_count)})"
        )
    parts.append(f"{reply.not_started} not started")
    return f"{head}: {', '.join(parts)}"


@broker_options
def cancel(
    ctx: typer.Context,
    run_id: Annotated[
        str,
        typer.Argument(help="The run's id (32 hex digits) or a prefix only one run has."),
    ],
    reason: Reason = None,
    operator: As = None,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Cancel a run: the engine running it stops it, and says what it stopped.

    Running coroutine tasks are cancelled; plain-function tasks already in threads finish.
    A prefix is looked up in the history (--db, or the default one if it exists) and in the
    runs heard live within 5 s (at most --timeout); one that several runs have exits 2.
    Examples: cascade cancel 58a88765cea2 --reason "wrong input"
    """
    try:
        wanted = checked_prefix(run_id)
        why, by = checked_reason(reason), operator_name(operator, broker.username)
    except UsageError as exc:
        raise usage(exc) from None
    recorded = Recorded() if is_full(wanted) else recorded_run_ids(db, wanted)

    async def ask(connector: Any) -> tuple[str | None, CancelReply | None]:
        target: str | None = wanted
        if not is_full(wanted):
            live = await heard_run_ids(connector, wanted, live_wait(broker.timeout))
            target = one_run(wanted, live, recorded.ids, more=recorded.capped)
        if target is None:
            return None, None
        reply = await request_cancel(
            connector, target, issued_by=by, reason=why, timeout=broker.timeout
        )
        return target, reply

    try:
        target, reply = CliContext.of(ctx).run(broker, ask)
    except UsageError as exc:
        raise usage(exc) from None
    if target is None:
        searched = f"in the history at {recorded.location} or " if recorded.location else ""
        raise fail(
            f"no run's id starts with {wanted} {searched}among the runs heard within "
            f"{live_wait(broker.timeout):g} s; {WHERE_FULL_IDS}"
        )
    if reply is None:
        raise fail(
            f"no engine answered for run {target} within {broker.timeout:g} s: it has ended, "
            "it runs on another broker, or its engine is not connected"
        )
    typer.echo(describe_reply(reply))
