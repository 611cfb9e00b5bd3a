"""One decision on one held task, as the four commands take it: the run resolved from a prefix
(the history and the runs heard live), the request checked, sent, and its answer said."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import msgspec
import typer

from cascade.control import Controller, Decide, DecisionAnswer, RunHandle
from cascade.control.run_ids import Recorded, is_full, short_id
from cascade.interfaces.wire import Decision
from cascade.reader import Place, ReaderModel

from ...plumbing._broker import BrokerOptions
from ...plumbing._context import CliContext, fail
from ...plumbing._run_lookup import (
    lost_view,
    no_run_named,
    recorded_run,
    recorded_run_ids,
    run_named,
)
from ..cancel._cancel_said import RefusalsSaid

__all__ = ["Asked", "answer_json", "decide_one", "said_answer"]


@dataclass(frozen=True)
class Asked:
    """What a decision command was given: the decision and who, why, where (checked)."""

    decision: Decision
    issued_by: str
    reason: str | None
    attempt: int | None
    result: Any
    login: str | None
    org: str | None
    project: str | None
    db: str | None
    json_output: bool

    def request(self, run_id: str, task: str, attempt: int | None) -> Decide:
        """The request on ``task`` of ``run_id`` (:class:`~cascade.control.ControlError` for
        bad input): what :meth:`send` sends, checked before anything is."""
        given = {"result": self.result} if self.decision == "complete" else {}
        return Decide(
            run_id=run_id,
            task=task,
            decision=self.decision,
            attempt=attempt,
            reason=self.reason,
            **given,
        )

    def controller(
        self, connector: Any, timeout: float, reader: ReaderModel | None = None
    ) -> Controller:
        """Steering through the command's connection, issued by whom it says; with ``reader``
        (:func:`~...plumbing._run_lookup.lost_view`), a decision on a run it knows lost is
        refused at once (:class:`~cascade.control.RunLostError`)."""
        return Controller(
            connector, issued_by=self.issued_by, timeout=timeout, login=self.login, reader=reader
        )

    async def send(self, run: RunHandle, task: str, attempt: int | None) -> DecisionAnswer:
        """The decision sent on ``task`` of ``run``, at ``attempt``, and its answer."""
        given = {"result": self.result} if self.decision == "complete" else {}
        return await run.decide(task, self.decision, attempt=attempt, reason=self.reason, **given)


def answer_json(answer: DecisionAnswer) -> dict[str, Any]:
    """An answer as `--json` prints it: the request, the owner's reply (``null``: none came)
    and the answers refused."""
    request = answer.request
    return {
        "run_id": answer.run_id,
        "task": None if request is None else request.task,
        "decision": None if request is None else request.decision,
        "attempt": None if request is None else request.attempt,
        "request_id": None if request is None else request.id,
        "applied": answer.applied,
        "outcome": None if answer.reply is None else answer.reply.outcome,
        "reply": None if answer.reply is None else msgspec.to_builtins(answer.reply),
        "owner": answer.owner,
        "refused": answer.refused,
    }


def said_answer(answer: DecisionAnswer, timeout: float) -> tuple[bool, str]:
    """Whether the answer says the decision was applied, and the line that says so or why
    not (``already decided: retry by alice 12 s ago (API back)``)."""
    if answer.unlocated:
        return False, answer.unanswered(timeout)
    if answer.reply is None:
        return False, (
            f"{answer.unanswered(timeout)}: the run has ended, it runs on another broker, or "
            "its engine is not connected"
        )
    return answer.applied, answer.describe()


def decide_one(
    ctx: typer.Context, asked: Asked, run_id: str, task: str, broker: BrokerOptions
) -> None:
    """Resolve ``run_id`` (a prefix only one run has), send the decision on ``task`` and say
    its answer: exit 0 only when applied; refused or unanswered, or the run lost (its engine
    went offline: where it went is said), exit 1; bad input, exit 2."""
    wanted = asked.request(run_id, task, asked.attempt).run_id  # checked before anything is sent
    recorded = Recorded() if is_full(wanted) else recorded_run_ids(asked.db, wanted)
    said = RefusalsSaid()

    async def ask(connector: Any) -> DecisionAnswer | None:
        place = Place(asked.org, asked.project)
        target = await run_named(connector, wanted, recorded, broker.timeout, place)
        if target is None:
            return None
        of_run = await asyncio.to_thread(recorded_run, asked.db, target)
        owner, org, project = of_run if of_run is not None else (None, asked.org, asked.project)
        view = await lost_view(connector, owner, org, project)
        control = asked.controller(connector, broker.timeout, view)
        run = control.run(target, owner=owner, org=org, project=project, on_refused=said)
        return await asked.send(run, task, asked.attempt)

    waiting_for = (
        f"the answer of the engine of run {short_id(wanted)} (at most {broker.timeout:g} s)"
    )
    answer = CliContext.of(ctx).run(broker, ask, waiting_for=waiting_for)
    if answer is None:
        raise no_run_named(wanted, recorded, broker.timeout)
    said.rest(answer.refused)
    applied, line = said_answer(answer, broker.timeout)
    if asked.json_output:
        typer.echo(json.dumps(answer_json(answer)))
    if not applied:
        raise fail(line)
    if not asked.json_output:
        typer.echo(line)
