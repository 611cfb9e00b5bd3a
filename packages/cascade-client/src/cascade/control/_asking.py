"""How a command reaches a run's engine and its answer comes back (a cancel, a decision).

Subscribes to the request's reply topics first, then publishes the request (QoS 1, not
retained: an engine that is away never gets it) and waits for the broker to take it
(:func:`publish_confirmed`: under MQTT 5 a refusal raises), then for the owner's answer
(:class:`AnswerJudge`). Without a known owner, the run's telemetry is listened to from
before the request, and the run's engine asked for a snapshot, so that a live engine says it
is the owner at once (:class:`HeardOwner`); without the run's org and project, which the
request's topic names, that is done before the request, which goes where the run was heard.
With the broker ``login`` that asks, it says so once the request is taken
(:func:`say_issued`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from cascade.connector_kit import bounded
from cascade.interfaces import Connector, ConnectorError, telemetry_filter
from cascade.interfaces.commands import (
    CancelRequest,
    DecisionRequest,
    SnapshotRequest,
    reply_filter,
    snapshot_request_topic,
)
from cascade.interfaces.notes import IssuedNote
from cascade.interfaces.wire import IssuedAction

from ._answers import Answer, AnswerJudge, R
from ._publishing import publish_confirmed, say_issued
from ._run_owner import HeardOwner

__all__ = ["ask_engine"]


async def ask_engine(
    connector: Connector,
    topic_of: Callable[[str, str], str],
    request: CancelRequest | DecisionRequest,
    judge: AnswerJudge[R],
    *,
    action: IssuedAction,
    timeout: float,
    login: str | None,
    org: str | None,
    project: str | None = None,
) -> Answer[R]:
    """Publish ``request`` (its ``id`` and ``run_id``, as the judge's) to ``topic_of(org,
    project)`` (the command's topic names the run's org and project, which a broker ACL
    binds); the answer ``judge`` took within ``timeout`` seconds (``reply`` ``None``: none
    came).

    ``org`` and ``project`` are the run's when known: the engine answers on a topic of the
    run's org, and a broker ACL may let this login read its own orgs' answers only, so only
    that org's are subscribed to; without it, every org's. Without both, the run's
    telemetry is listened to (within ``org`` when given) and its engine asked for a
    snapshot, and the request is sent where the first message heard of the run says the
    run is (:class:`HeardOwner`); nothing heard within ``timeout``, nothing is sent
    (:attr:`Answer.unlocated`). ``action`` is what the login's note says it did.
    """
    request_id = request.id
    run_id = judge.answer.run_id
    prefix = connector.topic_prefix
    handles = [await connector.subscribe(reply_filter(request_id, prefix, org), judge)]
    try:
        heard = None
        place = (org, project) if org is not None and project is not None else None
        if judge.answer.owner is None or place is None:
            heard = HeardOwner(run_id, judge.owner_heard, prefix)
            telemetry = telemetry_filter(org, project, run_id=run_id, prefix=prefix)
            handles.append(await connector.subscribe(telemetry, heard))
        started = time.monotonic()
        if place is None:
            assert heard is not None
            heard.snapshot_asked()
            await _ask_for_snapshot(connector, run_id, prefix)
            with contextlib.suppress(asyncio.TimeoutError):
                async with bounded(timeout):
                    await heard.heard.wait()
            if heard.place is None:
                judge.answer.unlocated = True
                judge.give_up()
                return judge.answer
            place, heard = heard.place, None  # asked already: its answer named the owner
        topic = topic_of(*place)
        await publish_confirmed(
            connector,
            [(topic, request)],
            max(0.0, timeout - (time.monotonic() - started)),
            retain=False,
        )
        note = IssuedNote(
            topic=topic,
            action=action,
            issued_at=request.issued_at,
            issued_by=request.issued_by,
            id=request_id,
        )
        await say_issued(connector, login, [note])
        if heard is not None:
            heard.snapshot_asked()
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
    heartbeat. Sent after the command, unconfirmed: a broker that refuses it (an ACL)
    must not make the command look refused, and the command's own telemetry says who owns
    the run as well."""
    request = SnapshotRequest(run_id=run_id)
    with contextlib.suppress(ConnectorError):
        await connector.publish(snapshot_request_topic(run_id, prefix), request, qos=1)
