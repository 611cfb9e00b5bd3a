"""Decisions on a held task: a request checked before it is sent, asked of the run's engine,
and its answer (:class:`DecisionAnswer`), taken from the run's owner only, as a cancel's is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from cascade.interfaces import (
    DECISIONS,
    MAX_RESULT_BYTES,
    Connector,
    Decision,
    DecisionReply,
    DecisionRequest,
    decide_topic,
    decode_decision_reply,
    new_request_id,
)

from ._answers import Answer, AnswerJudge, Refusal
from ._asking import ask_engine
from ._decision_text import said_of
from ._errors import ControlError
from ._operator import checked_reason, checked_text
from ._run_ids import checked_prefix, is_full

__all__ = ["MAX_TASK_LENGTH", "DecisionAnswer", "decision_request", "request_decision"]

MAX_TASK_LENGTH = 1024
"""The longest task id or name a decision names."""
_NO_RESULT = object()


@dataclass
class DecisionAnswer(Answer[DecisionReply]):
    """What came of a decision (:class:`Answer` of a
    :class:`~cascade.interfaces.DecisionReply`): the owner's answer (``reply``, ``None``:
    none came in time), the run's owner, the answers from others refused, and the
    ``request`` sent."""

    request: DecisionRequest | None = None

    @property
    def applied(self) -> bool:
        """Whether the run's engine applied the decision."""
        return self.reply is not None and self.reply.applied

    def describe(self, now: float | None = None) -> str:
        """The answer in one line: ``retried load (load-1, attempt 1) of run 58a88765cea2 on
        host-1: attempt 2 starts``, or why it was refused: ``load (load-1, attempt 1) of run
        58a88765cea2: already decided: retry by alice 12 s ago (API back)``. Every text from
        the broker is made inert. ``now`` (epoch seconds) is when the ages are counted from.
        """
        if self.reply is None:
            return f"no engine answered for run {self.run_id}"
        return said_of(self.reply, self.request, time.time() if now is None else now)


def decision_request(
    run_id: str,
    task: str,
    decision: str,
    *,
    attempt: int | None = None,
    result: Any = _NO_RESULT,
    issued_by: str | None = None,
    reason: str | None = None,
) -> DecisionRequest:
    """The request of ``decision`` on the held ``task`` (its id or name) of ``run_id`` (a
    whole id), at the held ``attempt`` (``None``: whichever is held when it arrives), with a
    ``complete``'s ``result`` (any JSON value, ``None`` too; for ``complete`` only), stamped
    now with a fresh id. Bad input raises :class:`ControlError` naming the field
    (``run_id``, ``task``, ``decision``, ``attempt``, ``result``, ``reason``)."""
    wanted = checked_prefix(run_id)
    if not is_full(wanted):
        raise ControlError(
            f"a whole run id (32 hex digits) is decided on, not {run_id!r}", "run_id"
        )
    named = checked_text(task, "task", MAX_TASK_LENGTH)
    checked = _checked_decision(decision)
    if attempt is not None and (
        isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1
    ):
        raise ControlError(f"attempt must be a whole number from 1, not {attempt!r}", "attempt")
    given = None if result is _NO_RESULT else _checked_result(result, checked)
    if checked == "complete" and result is _NO_RESULT:
        raise ControlError("complete gives its result to the dependents: give one", "result")
    return DecisionRequest(
        id=new_request_id(),
        run_id=wanted,
        task=named,
        decision=checked,
        attempt=attempt,
        result=given,
        issued_by=issued_by,
        reason=checked_reason(reason),
        issued_at=time.time(),
    )


async def request_decision(
    connector: Connector,
    request: DecisionRequest,
    *,
    timeout: float,
    owner: str | None = None,
    on_refused: Callable[[Refusal], None] | None = None,
    login: str | None = None,
    org: str | None = None,
    project: str | None = None,
) -> DecisionAnswer:
    """Send ``request`` (:func:`decision_request`) to the engine running its run; its
    answer, taken only from the run's owner, within ``timeout`` seconds
    (:class:`DecisionAnswer`: ``reply`` is ``None`` when none came; ``applied`` when the
    engine applied it). ``owner``, ``org``, ``project``, ``on_refused`` and ``login`` are as
    :func:`~cascade.control.request_cancel` takes them."""
    answer = DecisionAnswer(request.run_id, owner=owner, request=request)
    prefix = connector.topic_prefix
    judge = AnswerJudge(request.id, answer, prefix, decode_decision_reply, on_refused)

    def topic_of(org: str, project: str) -> str:
        return decide_topic(org, project, request.run_id, prefix)

    await ask_engine(
        connector,
        topic_of,
        request,
        judge,
        action=request.decision,
        timeout=timeout,
        login=login,
        org=org,
        project=project,
    )
    return answer


def _checked_decision(decision: str) -> Decision:
    for known in DECISIONS:
        if decision == known:
            return known
    raise ControlError(
        f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}", "decision"
    )


def _checked_result(result: Any, decision: Decision) -> Any:
    if decision != "complete":
        raise ControlError(f"a result goes with complete, not with {decision}", "result")
    try:
        encoded = msgspec.json.encode(result)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ControlError(f"result is not JSON: {exc}", "result") from None
    if len(encoded) > MAX_RESULT_BYTES:
        raise ControlError(
            f"result is {len(encoded):,} bytes of JSON, at most {MAX_RESULT_BYTES:,}", "result"
        )
    return msgspec.json.decode(encoded)
