"""Decisions on a held task: a request checked before it is sent, asked of the run's engine,
and its answer (:class:`DecisionAnswer`), taken from the run's owner only, as a cancel's is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cascade.interfaces import Connector
from cascade.interfaces.commands import (
    DecisionReply,
    DecisionRequest,
    decide_topic,
    decode_decision_reply,
)

from ._answers import Answer, AnswerJudge, Refusal
from ._asking import ask_engine
from ._decision_text import said_of

__all__ = ["DecisionAnswer", "request_decision"]


@dataclass
class DecisionAnswer(Answer[DecisionReply]):
    """What came of a decision (:class:`Answer` of a
    :class:`~cascade.interfaces.commands.DecisionReply`): the owner's answer (``reply``, ``None``:
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
    """Send ``request`` (:meth:`~cascade.control.Decide.wire_request`) to the engine running
    its run; its answer, taken only from the run's owner, within ``timeout`` seconds
    (:class:`DecisionAnswer`: ``reply`` is ``None`` when none came; ``applied`` when the
    engine applied it). ``owner``, ``org``, ``project``, ``on_refused`` and ``login`` are as
    :func:`._cancel.request_cancel` takes them."""
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
