"""A cancel request and its answers: asked of a run's engine, answered (or refused)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from cascade.interfaces import (
    CancelReply,
    CancelRequest,
    Connector,
    ConnectorError,
    IssuedNote,
    SnapshotRequest,
    TaskRef,
    cancel_topic,
    new_request_id,
    reply_filter,
    snapshot_request_topic,
    telemetry_filter,
)
from cascade.interfaces.connector_kit import bounded
from cascade.interfaces.reader import SHOWN, inert

from ._cancel_answers import AnswerJudge, CancelAnswer, Refusal
from ._publishing import publish_confirmed, say_issued
from ._run_owner import HeardOwner

__all__ = ["CancelAnswer", "Refusal", "describe_reply", "request_cancel"]

_NAMES_SHOWN = 5


async def request_cancel(
    connector: Connector,
    run_id: str,
    *,
    issued_by: str | None,
    reason: str | None,
    timeout: float,
    owner: str | None = None,
    on_refused: Callable[[Refusal], None] | None = None,
    login: str | None = None,
    org: str | None = None,
) -> CancelAnswer:
    """Ask the engine running ``run_id`` to cancel it; its answer, taken only from the run's
    owner, within ``timeout`` seconds (:class:`CancelAnswer`: ``reply`` is ``None`` when none
    came).

    ``owner`` is the source the run belongs to when known (the history's); without it, the
    run's telemetry is listened to, from before the request, and the run's engine is asked
    for a snapshot, so that a live engine says it is the owner at once: the first source
    heard is the owner, as for every reader (:class:`~cascade.control.HeardOwner`).
    An answer from another source is refused, counted and told to ``on_refused``
    (:class:`~cascade.control.AnswerJudge`).

    ``org`` is the run's org when known: the engine answers on a topic of the run's org
    (:func:`~cascade.interfaces.reply_topic`), and a broker ACL may let this login read its
    own orgs' answers (and runs) only, so only that org's are subscribed to; without it,
    every org's.

    Subscribes to the request's reply topics first, then publishes the request (QoS 1,
    not retained: an engine that is away never gets it) and waits for the broker to take it
    (:func:`publish_confirmed`: under MQTT 5 a refusal raises), then for the answer. With
    the broker ``login`` that asks, it says so once the request is taken (:func:`say_issued`).
    """
    request = CancelRequest(
        id=new_request_id(),
        run_id=run_id,
        issued_by=issued_by,
        reason=reason,
        issued_at=time.time(),
    )
    prefix = connector.topic_prefix
    judge = AnswerJudge(request.id, run_id, prefix, owner, on_refused)
    handles = [await connector.subscribe(reply_filter(request.id, prefix, org), judge)]
    try:
        if owner is None:
            heard = HeardOwner(run_id, judge.owner_heard, prefix)
            telemetry = telemetry_filter(org, run_id=run_id, prefix=prefix)
            handles.append(await connector.subscribe(telemetry, heard))
        started = time.monotonic()
        topic = cancel_topic(run_id, prefix)
        await publish_confirmed(connector, [(topic, request)], timeout, retain=False)
        note = IssuedNote(topic=topic, action="cancel", issued_at=request.issued_at,
                          issued_by=issued_by, id=request.id)  # fmt: skip
        await say_issued(connector, login, [note])
        if owner is None:
            await _ask_for_snapshot(connector, run_id, prefix)
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, timeout - (time.monotonic() - started))):
                await judge.decided.wait()
        judge.give_up()
        return judge.answer
    finally:
        for handle in handles:
            await handle.unsubscribe()


async def _ask_for_snapshot(connector: Connector, run_id: str, prefix: str) -> None:
    """Ask the run's engine for a snapshot, so that it is heard at once, not at its next
    heartbeat. Sent after the cancel, unconfirmed: a broker that refuses it (an ACL)
    must not make the cancel look refused, and the cancel's own telemetry says who owns
    the run as well."""
    request = SnapshotRequest(run_id=run_id)
    with contextlib.suppress(ConnectorError):
        await connector.publish(snapshot_request_topic(run_id, prefix), request, qos=1)


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
