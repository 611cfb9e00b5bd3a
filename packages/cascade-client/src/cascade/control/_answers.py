"""A command's answers, judged: the one from the run's owner is taken, every other is refused.

Anyone who can publish may answer on ``{prefix}/reply/{org}/{id}/+`` (a broker ACL at most
binds the last level to the answerer's login), so an answer counts only from the engine that
owns the run (:class:`._run_owner.HeardOwner`). Until the owner is known, answers wait;
once it is, the first answer from it is taken and those from others are refused; the owner
never heard, every answer is refused. A cancel's answers and a decision's are judged alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cascade.interfaces import InvalidMessageError, Message, decode_level
from cascade.interfaces.commands import CancelReply, DecisionReply
from cascade.interfaces.wire import TaskRef, check_reply_topic
from cascade.reader import REASON_MISMATCH, SHOWN, inert

from ._run_ids import short_id

__all__ = ["Answer", "AnswerJudge", "CancelAnswer", "Refusal"]

_NAMES_SHOWN = 5  # the tasks a cancel's answer names
_WAITING = 64  # answers kept while the owner is not known (the rest are refused at once)

R = TypeVar("R", bound="CancelReply | DecisionReply")


@dataclass(frozen=True)
class Refusal:
    """An answer not taken: who sent it (the source its topic names) and why."""

    source: str
    why: str

    def __str__(self) -> str:
        """``refused an answer from mallory: run 58a88765cea2 belongs to host-1``."""
        return f"refused an answer from {inert(self.source, SHOWN['source'])}: {self.why}"


@dataclass
class Answer(Generic[R]):
    """What came of a command to a run's engine: the owner's answer (``None``: none came), the
    owner (``None``: never known) and how many answers from others were refused."""

    run_id: str
    reply: R | None = None
    owner: str | None = None
    refused: int = 0
    unlocated: bool = False
    """Nothing was sent: the run's org and project (its command's topic names them) were not
    given, and the run was not heard within the timeout to tell them."""

    def unanswered(self, timeout: float) -> str:
        """``no engine answered for run ID within 5 s`` and, when some were refused,
        ``(2 answers from other sources than host-1 were refused)``; for a request never sent,
        why (:attr:`unlocated`)."""
        if self.unlocated:
            return (
                f"nothing was sent to run {self.run_id}: its org and project are not known "
                f"(no history names the run, and nothing of it was heard within {timeout:g} s): "
                "give them (--org and --project)"
            )
        said = f"no engine answered for run {self.run_id} within {timeout:g} s"
        if self.refused:
            than = f" than {inert(self.owner, SHOWN['source'])}" if self.owner else ""
            were = "answer was" if self.refused == 1 else "answers were"
            said += f" ({self.refused} {were} from other sources{than} refused)"
        return said


@dataclass
class CancelAnswer(Answer[CancelReply]):
    """What came of a cancel (:class:`Answer` of a
    :class:`~cascade.interfaces.commands.CancelReply`)."""

    def describe(self) -> str:
        """The answer in one line: ``cancelled run ID on SOURCE: 2 running tasks cancelled (a,
        b), 1 left to finish in their threads, results discarded (c), 17 not started``; every
        text from the broker made inert."""
        reply = self.reply
        if reply is None:
            return f"no engine answered for run {self.run_id}"
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


def _names(tasks: list[TaskRef], count: int) -> str:
    shown = ", ".join(inert(t.task_name, SHOWN["name"]) for t in tasks[:_NAMES_SHOWN])
    more = count - min(len(tasks), _NAMES_SHOWN)
    return shown + (f" and {more} more" if more > 0 else "")


class AnswerJudge(Generic[R]):
    """The reply callback of one request: takes the owner's answer into :attr:`answer` (and
    sets :attr:`decided`), refuses the others (``on_refused`` hears each;
    :attr:`Answer.refused` counts them).

    ``answer`` is where the verdict goes (its ``owner`` the run's owner when known
    beforehand, the history's; else :meth:`owner_heard` tells it once heard); ``decode``
    reads an answer of the request's kind (``decode_cancel_reply``, ``decode_decision_reply``),
    raising :class:`~cascade.interfaces.InvalidMessageError` for anything else.
    """

    def __init__(
        self,
        request_id: str,
        answer: Answer[R],
        prefix: str,
        decode: Callable[[Any], R],
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self.answer = answer
        self.decided = asyncio.Event()
        self._request_id = request_id
        self._prefix = prefix
        self._decode = decode
        self._on_refused = on_refused
        self._waiting: list[R] = []
        self._closed = False

    def __call__(self, message: Message) -> None:
        """Judge one message on the request's reply topics."""
        if self.decided.is_set() or self._closed:
            return
        try:
            reply = self._decode(message.raw or message.payload)
        except InvalidMessageError:
            return  # not an answer to anything
        if reply.id != self._request_id or reply.run_id != self.answer.run_id:
            return  # an answer to another request: not one to this
        try:
            check_reply_topic(reply, message.topic, self._prefix)
        except InvalidMessageError:
            level = decode_level(message.topic.rsplit("/", 1)[-1])
            self._refuse(
                level,
                f"{REASON_MISMATCH} (it says it is from {inert(reply.source, SHOWN['source'])})",
            )
            return
        self._judge(reply)

    def owner_heard(self, source: str) -> None:
        """The run's owner is ``source`` (first heard): judge the answers that waited."""
        if self.answer.owner is not None or self._closed:
            return
        self.answer.owner = source
        waiting, self._waiting = self._waiting, []
        for reply in waiting:
            self._judge(reply)

    def give_up(self) -> None:
        """No more answers are awaited: those still waiting for an owner are refused, and
        what comes later changes nothing."""
        self._closed = True
        waiting, self._waiting = self._waiting, []
        for reply in waiting:
            self._refuse(reply.source, self._unknown())

    def _judge(self, reply: R) -> None:
        owner = self.answer.owner
        if owner is None:
            if len(self._waiting) < _WAITING:
                self._waiting.append(reply)
            else:
                self._refuse(reply.source, self._unknown())
        elif self.answer.reply is not None:
            if reply.source != owner:
                self._refuse(reply.source, self._belongs(owner))
        elif reply.source == owner:
            self.answer.reply = reply
            self.decided.set()
        else:
            self._refuse(reply.source, self._belongs(owner))

    def _belongs(self, owner: str) -> str:
        return f"run {short_id(self.answer.run_id)} belongs to {inert(owner, SHOWN['source'])}"

    def _unknown(self) -> str:
        return f"no engine of run {short_id(self.answer.run_id)} was heard"

    def _refuse(self, source: str, why: str) -> None:
        self.answer.refused += 1
        if self._on_refused is not None:
            self._on_refused(Refusal(source, why))
