"""A cancel request and its answers: asked of a run's engine, answered (or refused)."""

from __future__ import annotations

import time
from collections.abc import Callable

from cascade.interfaces import Connector
from cascade.interfaces.commands import CancelRequest, cancel_topic, decode_cancel_reply
from cascade.interfaces.wire import new_request_id

from ._answers import AnswerJudge, CancelAnswer, Refusal
from ._asking import ask_engine

__all__ = ["CancelAnswer", "Refusal", "request_cancel"]


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
    project: str | None = None,
) -> CancelAnswer:
    """Ask the engine running ``run_id`` to cancel it; its answer, taken only from the run's
    owner, within ``timeout`` seconds (:class:`CancelAnswer`: ``reply`` is ``None`` when none
    came).

    ``owner`` is the source the run belongs to when known (the history's); without it, the
    run's telemetry is listened to, from before the request, and the run's engine is asked
    for a snapshot, so that a live engine says it is the owner at once: the first source
    heard is the owner, as for every reader (:class:`._run_owner.HeardOwner`).
    An answer from another source is refused, counted and told to ``on_refused``
    (:class:`._answers.AnswerJudge`).

    ``org`` and ``project`` are the run's when known. The request's topic names both
    (:func:`~cascade.interfaces.commands.cancel_topic`: a broker ACL binds who may cancel in each);
    without them, they are taken from the run's telemetry first (nothing heard within
    ``timeout``: nothing is sent, :attr:`~cascade.control.Answer.unlocated`). The engine
    answers on a topic of the run's org (:func:`~cascade.interfaces.commands.reply_topic`), and a
    broker ACL may let this login read its own orgs' answers (and runs) only, so only that
    org's are subscribed to; without it, every org's.

    The request travels as every command does (:func:`._publishing.publish_confirmed`,
    then the login's note, :func:`._publishing.say_issued`): see ``_asking``.
    """
    request = CancelRequest(
        id=new_request_id(),
        run_id=run_id,
        issued_by=issued_by,
        reason=reason,
        issued_at=time.time(),
    )
    answer = CancelAnswer(run_id, owner=owner)
    prefix = connector.topic_prefix
    judge = AnswerJudge(request.id, answer, prefix, decode_cancel_reply, on_refused)

    def topic_of(org: str, project: str) -> str:
        return cancel_topic(org, project, run_id, prefix)

    await ask_engine(
        connector,
        topic_of,
        request,
        judge,
        action="cancel",
        timeout=timeout,
        login=login,
        org=org,
        project=project,
    )
    return answer
