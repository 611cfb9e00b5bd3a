"""Start requests as a serving engine takes them: read from their topic, checked, each ``id``
answered once (a copy gets the first answer), and the ids the servers make themselves kept
theirs."""

from __future__ import annotations

from collections import OrderedDict

from cascade.interfaces import InvalidMessageError, Message
from cascade.interfaces.serving import StartReply, StartRequest
from cascade.interfaces.wire import (
    SLOT_REQUEST_PREFIX,
    TRIGGER_REQUEST_PREFIX,
    decode_start_request,
    start_topic_workflow,
)

__all__ = ["CARRY_REQUEST_PREFIX", "Answers", "read_request", "server_made"]

CARRY_REQUEST_PREFIX = "carry-"
"""How the id a carry-on is claimed as begins (``carry-{run}``, ``carry-{run}-{n}``)."""

ANSWERS_KEPT = 4096
"""Answers kept for copies of their request (QoS 1 resends one within seconds)."""


def read_request(message: Message, prefix: str) -> StartRequest:
    """The request ``message`` carries, on ``{prefix}/start/{org}/{project}/{workflow}``
    (shared) or ``.../{workflow}/{source}`` (addressed); :class:`InvalidMessageError` when it
    is malformed or names another workflow than its topic."""
    request = decode_start_request(message.raw or message.payload)
    if start_topic_workflow(message.topic, prefix) != request.workflow:
        raise InvalidMessageError(
            f"for workflow {request.workflow!r}, not the one its topic names", "$.workflow"
        )
    return request


def server_made(request: StartRequest) -> str | None:
    """Why ``request``, taken from the broker, may not have its ``id``: one the servers make
    themselves (a carry-on's ``carry-...``; a schedule's slot's ``sched-...``, but in that
    slot's backfill), whose claim in a shared results store would keep the carry-on of a run,
    or a slot, from starting; ``None`` when it may."""
    if request.id.startswith(CARRY_REQUEST_PREFIX):
        made = "the carry-on of a run whose engine died (carry-RUN)"
    elif request.id.startswith(SLOT_REQUEST_PREFIX) and request.backfill is None:
        made = "a schedule's slot (sched-SCHEDULE-SLOT; a backfill of the slot may take it)"
    elif request.id.startswith(TRIGGER_REQUEST_PREFIX):
        made = "a trigger's event (trig-TRIGGER-KEY)"
    else:
        return None
    return (
        f"request id {request.id} is one servers make themselves, for {made}: a start "
        "request takes a fresh id of its own (as cascade start and the dashboard do)"
    )


class Answers:
    """The answers given, by request id (the latest :data:`ANSWERS_KEPT`), and the requests
    being answered."""

    def __init__(self, kept: int = ANSWERS_KEPT) -> None:
        self._kept = kept
        self._answers: OrderedDict[str, StartReply] = OrderedDict()
        self._pending: set[str] = set()

    def seen(self, request_id: str) -> StartReply | bool:
        """The answer given to ``request_id``, ``True`` while it is being answered, ``False``
        for a request not seen yet (which is then being answered)."""
        answer = self._answers.get(request_id)
        if answer is not None:
            self._answers.move_to_end(request_id)
            return answer
        if request_id in self._pending:
            return True
        self._pending.add(request_id)
        return False

    def forget(self, request_id: str) -> None:
        """``request_id`` was answered with what may change (no room now): a copy of it, or
        the same request asked again, is considered afresh."""
        self._pending.discard(request_id)
        self._answers.pop(request_id, None)

    def answered(self, reply: StartReply) -> None:
        """``reply`` is the answer to its request, for its copies."""
        self._pending.discard(reply.id)
        self._answers[reply.id] = reply
        self._answers.move_to_end(reply.id)
        while len(self._answers) > self._kept:
            self._answers.popitem(last=False)
