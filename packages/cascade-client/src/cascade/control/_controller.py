"""Steering from Python: one object that pauses, resumes, limits, cancels, decides on held
tasks and starts served workflows over a connector, each verb one request type (the
protocol's, :mod:`cascade.interfaces.commands`) sent by :meth:`Controller.send`; and the
handle of one run, its id, owner and place bound once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

import msgspec

from cascade.interfaces import Connector, Constraint
from cascade.interfaces.commands import Cancel, Decide, Limit, Pause, Resume, Start
from cascade.interfaces.serving import StartReply
from cascade.interfaces.wire import (
    MAX_OPERATOR_LENGTH,
    ConstraintType,
    Decision,
    RerunMode,
    checked_prefix,
    checked_text,
    default_operator,
)
from cascade.reader import ReaderModel

from ._answers import CancelAnswer, Refusal
from ._cancel import request_cancel
from ._decisions import DecisionAnswer, request_decision
from ._publishing import clear_constraints, set_constraints
from ._run_ids import find_run, live_wait
from ._run_lost import refuse_lost
from ._schedules import ScheduleView, backfill_request, backfilled, schedules_of
from ._served import Served, served
from ._starting import send_start

__all__ = ["Cleared", "Controller", "RunHandle", "Steered"]


@dataclass(frozen=True)
class Steered:
    """Constraints the broker acknowledged (set, retained, in the index where it needs one):
    each one's topic and what was published there."""

    constraints: tuple[tuple[str, Constraint], ...]

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics written, in order."""
        return tuple(topic for topic, _ in self.constraints)


@dataclass(frozen=True)
class Cleared:
    """What a resume cleared: the constraint topics emptied (none: nothing was in force)."""

    scope: str
    topics: tuple[str, ...]


class Controller:
    """Pause, resume, limit and cancel the runs of the engines on ``connector`` (connected;
    its ``topic_prefix`` says which deployment), retry, skip, complete or fail their held
    tasks, and start or rerun served workflows, as `cascade pause`, `resume`, `limit`,
    `cancel`, `retry`, `skip`, `complete`, `fail`, `start` and `rerun` do: each verb is one
    request (:class:`Pause`, :class:`Limit`, :class:`Resume`, :class:`Cancel`,
    :class:`Decide`, :class:`Start`) that :meth:`send` sends, and each method of a verb
    makes its request and sends it.

    Every control is validated before anything is sent, and bad input raises
    :class:`ControlError` naming the field (``ttl must be ...``). What the broker refuses
    raises :class:`PublishRefusedError` (a ``ConnectorError``); a broker that cannot be
    reached, another ``ConnectorError``. ``issued_by`` is who the controls say they are from
    (a claim; default: ``user@host``), ``timeout`` how long each waits for the broker (and a
    cancel or a decision for the engine's answer), and ``login`` the broker login that says,
    on its own topic, what it did (for the history's audit; ``None``: nothing is said).

    ``reader`` is what the caller knows of the runs (its :class:`~cascade.reader.ReaderModel`:
    a view's, or one fed the engines' statuses and summaries): a decision or a cancel on a run
    it knows lost raises :class:`RunLostError` at once, saying where the run went, instead of
    waiting ``timeout`` for an answer no engine can give.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        issued_by: str | None = None,
        timeout: float = 5.0,
        login: str | None = None,
        reader: ReaderModel | None = None,
    ) -> None:
        self.connector = connector
        self.reader = reader
        self.issued_by = (
            default_operator(None)
            if issued_by is None
            else checked_text(issued_by, "issued_by", MAX_OPERATOR_LENGTH)
        )
        self.timeout = timeout
        self.login = login

    @overload
    async def send(self, request: Pause | Limit) -> Steered: ...
    @overload
    async def send(self, request: Resume) -> Cleared: ...
    @overload
    async def send(
        self,
        request: Cancel,
        *,
        owner: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> CancelAnswer: ...
    @overload
    async def send(
        self,
        request: Decide,
        *,
        owner: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> DecisionAnswer: ...
    @overload
    async def send(
        self,
        request: Start,
        *,
        on_refused: Callable[[Refusal], None] | None = None,
        before_send: Callable[[list[Served]], Awaitable[object]] | None = None,
    ) -> StartReply: ...

    async def send(
        self,
        request: Pause | Limit | Resume | Cancel | Decide | Start,
        *,
        owner: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
        before_send: Callable[[list[Served]], Awaitable[object]] | None = None,
    ) -> Steered | Cleared | CancelAnswer | DecisionAnswer | StartReply:
        """Send ``request``, issued by :attr:`issued_by`, and return what came of it.

        :class:`Pause` and :class:`Limit`: the constraints set, once the broker took them
        (:class:`Steered`); :class:`Resume`: the topics cleared (:class:`Cleared`).
        :class:`Cancel` and :class:`Decide` (a whole run id): the answer of the run's engine
        (:class:`CancelAnswer`, :class:`DecisionAnswer`: ``reply`` ``None`` when none came
        within the timeout), taken only from the run's owner (``owner`` when known, the
        history's, else the first source heard), the answers from others refused (counted,
        and told to ``on_refused``). :class:`Start`: the serving process's answer
        (:class:`~cascade.interfaces.serving.StartReply`; see :meth:`start` for what it raises);
        ``before_send(servers)`` is awaited once the processes that may take it are known,
        before it is sent (to listen to their runs, say)."""
        if isinstance(request, (Pause, Limit)):
            messages = request.constraints(self.issued_by, self.connector.topic_prefix)
            await set_constraints(self.connector, messages, self.timeout, login=self.login)
            return Steered(tuple(messages))
        if isinstance(request, Resume):
            topics = await clear_constraints(
                self.connector,
                request.scope,
                request.type,
                self.timeout,
                issued_by=self.issued_by,
                reason=request.reason,
                login=self.login,
            )
            return Cleared(request.scope, tuple(topics))
        if isinstance(request, Cancel):
            refuse_lost(self.reader, request.whole_run_id())
            return await request_cancel(
                self.connector,
                request.whole_run_id(),
                issued_by=self.issued_by,
                reason=request.reason,
                timeout=self.timeout,
                owner=owner,
                on_refused=on_refused,
                login=self.login,
                org=request.org,
                project=request.project,
            )
        if isinstance(request, Decide):
            refuse_lost(self.reader, request.run_id)
            return await request_decision(
                self.connector,
                request.wire_request(issued_by=self.issued_by),
                timeout=self.timeout,
                owner=owner,
                on_refused=on_refused,
                login=self.login,
                org=request.org,
                project=request.project,
            )
        return await send_start(
            self.connector,
            request.wire_request(issued_by=self.issued_by),
            on=request.on,
            timeout=self.timeout,
            on_refused=on_refused,
            before_send=before_send,
            org=request.org,
            project=request.project,
        )

    async def pause(
        self, scope: str = "global", *, ttl: float | None = None, reason: str | None = None
    ) -> Steered:
        """Pause the tasks in ``scope`` (``global`` or ``task:<glob>``): none starts until
        resumed, or for ``ttl`` seconds; running ones finish. A ``schedule:<name>``: its
        servers skip its slots meanwhile (docs/schedules.md)."""
        return await self.send(Pause(scope=scope, ttl=ttl, reason=reason))

    async def limit(
        self,
        scope: str,
        *,
        concurrency: int | None = None,
        rate: str | None = None,
        ttl: float | None = None,
        reason: str | None = None,
    ) -> Steered:
        """Limit how many tasks of ``scope`` run at once (``concurrency``) and/or how fast
        they start (``rate``: ``"10/m"``, ``"0.5/s"``)."""
        asked = Limit(scope=scope, concurrency=concurrency, rate=rate, ttl=ttl, reason=reason)
        return await self.send(asked)

    async def resume(
        self,
        scope: str = "global",
        *,
        type: ConstraintType | None = None,
        reason: str | None = None,
    ) -> Cleared:
        """Clear the constraints on ``scope``: all of them, or only those of ``type``."""
        return await self.send(Resume(scope=scope, type=type, reason=reason))

    def run(
        self,
        run_id: str,
        *,
        owner: str | None = None,
        org: str | None = None,
        project: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> RunHandle:
        """One run to steer (:class:`RunHandle`): ``run_id`` (a whole id: see
        :meth:`resolve_run`), its ``owner``, ``org`` and ``project`` when known, and who is
        told of the answers refused, bound once for each of its verbs (:meth:`RunHandle.cancel`,
        :meth:`RunHandle.retry`, ``skip``, ``complete``, ``fail``, :meth:`RunHandle.decide`,
        :meth:`RunHandle.rerun`).
        Nothing is sent until a verb is called; a bad run id raises :class:`ControlError`."""
        return RunHandle(self, run_id, owner=owner, org=org, project=project, on_refused=on_refused)

    async def cancel(
        self,
        run_id: str,
        *,
        reason: str | None = None,
        owner: str | None = None,
        org: str | None = None,
        project: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> CancelAnswer:
        """Ask the engine running ``run_id`` (a whole id: see :meth:`resolve_run`) to cancel
        it; its answer (:class:`CancelAnswer`), as :meth:`send` takes it. ``org`` and
        ``project`` are the run's when known: the request's topic names them. The same as
        ``run(run_id, ...).cancel(reason=reason)``."""
        handle = self.run(run_id, owner=owner, org=org, project=project, on_refused=on_refused)
        return await handle.cancel(reason=reason)

    async def decide(
        self,
        run_id: str,
        task: str,
        decision: Decision,
        *,
        attempt: int | None = None,
        result: Any = msgspec.UNSET,
        reason: str | None = None,
        owner: str | None = None,
        org: str | None = None,
        project: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> DecisionAnswer:
        """Ask the engine running ``run_id`` (a whole id: see :meth:`resolve_run`) to take
        ``decision`` on its held ``task``: :meth:`RunHandle.decide` of :meth:`run`."""
        handle = self.run(run_id, owner=owner, org=org, project=project, on_refused=on_refused)
        return await handle.decide(task, decision, attempt=attempt, result=result, reason=reason)

    async def served(self) -> list[Served]:
        """Who serves what: each serving process's announcement and whether it is online
        (:func:`._served.served`)."""
        return await served(self.connector, timeout=self.timeout)

    async def schedules(self) -> list[ScheduleView]:
        """The served schedules, each once, as their servers announce them: next slots, last
        slot and its run, paused or not (:func:`._schedules.schedules_of`)."""
        return schedules_of(await self.served())

    async def backfill(
        self,
        schedule: str,
        slots: Sequence[datetime],
        *,
        reason: str | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> list[StartReply]:
        """Start the past ``slots`` (aware) of the served ``schedule``, at most
        :data:`BACKFILL_MAX`, oldest first, each as its own start request (id
        ``sched-<schedule>-<slot>``) to an online server of the schedule, which claims the slot
        as its clock would and starts it only if no claim was there before: each answer,
        ``started``, or ``refused`` with why (``claimed already`` for a slot run before, or
        asked twice). A schedule no online server announces raises
        :class:`~cascade.control.NobodyServesError`; one served in several orgs or projects,
        :class:`ControlError` unless ``org`` and ``project`` pick one."""
        view = backfilled(await self.schedules(), schedule, slots, org=org, project=project)
        replies = []
        for slot in sorted(slots):
            request = backfill_request(view, slot, issued_by=self.issued_by, reason=reason)
            replies.append(
                await send_start(
                    self.connector,
                    request,
                    on=view.servers[0],
                    timeout=self.timeout,
                    org=view.org_id,
                    project=view.project_id,
                )
            )
        return replies

    async def start(
        self,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        *,
        on: str | None = None,
        reason: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> StartReply:
        """Start the served ``workflow`` with ``params`` (JSON values by name) on a process
        that serves it (``on``: that one); its answer: ``started`` with the new run's
        ``run_id``, or ``refused`` with why. No online server raises
        :class:`~cascade.control.NobodyServesError`, no answer within the timeout
        :class:`~cascade.control.StartTimeoutError` (see :func:`._starting.send_start`).
        ``org`` and ``project`` pick the serving processes of that org and project (a start's
        topic names one; the workflow served in several raises
        :class:`~cascade.control.ServedInManyPlacesError` without them)."""
        asked = Start(
            workflow=workflow,
            params=_params(params),
            on=on,
            reason=reason,
            org=org,
            project=project,
        )
        return await self.send(asked, on_refused=on_refused)

    async def rerun(
        self,
        run_id: str,
        *,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
        dry_run: bool = False,
        on: str | None = None,
        reason: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
        org: str | None = None,
        project: str | None = None,
    ) -> StartReply:
        """Rerun ``run_id`` (a whole id, or a prefix of at least 6 hex digits) of the served
        ``workflow``, with the params it ran with updated by ``params``, reusing every stored
        result that still matches: ``rerun`` says what runs again (``failure``, ``all``, or
        ``from`` ``from_task`` on); ``dry_run`` answers with the plan (``planned``) and starts
        nothing. As :meth:`start` otherwise."""
        asked = Start(
            workflow=workflow,
            params=_params(params),
            rerun_of=run_id,
            rerun=rerun,
            from_task=from_task,
            dry_run=dry_run,
            on=on,
            reason=reason,
            org=org,
            project=project,
        )
        return await self.send(asked, on_refused=on_refused)

    async def resolve_run(
        self, prefix: str, *, recorded: Iterable[str] = (), more: bool = False
    ) -> str | None:
        """The whole id of the one run whose id starts with ``prefix``: among the live runs
        the engines' summaries list and ``recorded`` (ids from a history, say; ``more``: it
        may hold others), at once; when these name none (or may not list every live run),
        among the runs heard live within 5 s (the timeout when shorter). ``None`` when none
        does. Several do: :class:`ControlError` naming them."""
        wanted = checked_prefix(prefix)
        wait = live_wait(self.timeout)
        return await find_run(self.connector, wanted, recorded, more=more, wait=wait)


class RunHandle:
    """One run to steer, as :meth:`Controller.run` binds it: its id, and its owner, org and
    project when known (the faces know them from a history, or from what they heard), bound
    once; each verb makes its request on the run (:class:`Cancel`, :class:`Decide`) and
    sends it through the controller (:meth:`Controller.send`), so its answer is taken as a
    cancel's or a decision's always is (from the run's owner only; the others refused and
    told to ``on_refused``)::

        run = control.run(run_id, org="acme", project="etl")
        await run.retry("load", reason="API back")
        await run.cancel(reason="wrong input")
    """

    def __init__(
        self,
        controller: Controller,
        run_id: str,
        *,
        owner: str | None = None,
        org: str | None = None,
        project: str | None = None,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self.controller = controller
        self.run_id = checked_prefix(run_id)
        self.owner = owner
        self.org = org
        self.project = project
        self.on_refused = on_refused

    async def cancel(self, *, reason: str | None = None) -> CancelAnswer:
        """Ask the run's engine to cancel it; its answer (:class:`CancelAnswer`)."""
        asked = Cancel(run_id=self.run_id, reason=reason, org=self.org, project=self.project)
        return await self.controller.send(asked, owner=self.owner, on_refused=self.on_refused)

    async def rerun(
        self,
        *,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
        dry_run: bool = False,
        on: str | None = None,
        reason: str | None = None,
    ) -> StartReply:
        """Rerun the run of the served ``workflow``, on a process that serves it in the run's
        org and project when the handle knows them: :meth:`Controller.rerun`."""
        return await self.controller.rerun(
            self.run_id,
            workflow=workflow,
            params=params,
            rerun=rerun,
            from_task=from_task,
            dry_run=dry_run,
            on=on,
            reason=reason,
            on_refused=self.on_refused,
            org=self.org,
            project=self.project,
        )

    async def decide(
        self,
        task: str,
        decision: Decision,
        *,
        attempt: int | None = None,
        result: Any = msgspec.UNSET,
        reason: str | None = None,
    ) -> DecisionAnswer:
        """Ask the run's engine to take ``decision`` on its held ``task`` (an id, or a name one
        held task has), at the held ``attempt`` (``None``: whichever is held; naming it makes
        sure a decision meant for one failure is not applied to the next); ``result`` is a
        ``complete``'s only.

        Its answer (:class:`DecisionAnswer`: ``applied``, or refused with why, e.g.
        ``already_decided`` with who decided first). Bad input raises :class:`ControlError`
        naming the field before anything is sent."""
        asked = Decide(
            run_id=self.run_id,
            task=task,
            decision=decision,
            attempt=attempt,
            result=result,
            reason=reason,
            org=self.org,
            project=self.project,
        )
        return await self.controller.send(asked, owner=self.owner, on_refused=self.on_refused)

    async def retry(
        self, task: str, *, attempt: int | None = None, reason: str | None = None
    ) -> DecisionAnswer:
        """Retry the held ``task``: one more attempt; failing again holds it again. See
        :meth:`decide`."""
        return await self.decide(task, "retry", attempt=attempt, reason=reason)

    async def skip(
        self, task: str, *, attempt: int | None = None, reason: str | None = None
    ) -> DecisionAnswer:
        """Skip the held ``task``: it ends ``SKIPPED``, its dependents skipped as after a
        failure. See :meth:`decide`."""
        return await self.decide(task, "skip", attempt=attempt, reason=reason)

    async def complete(
        self, task: str, result: Any, *, attempt: int | None = None, reason: str | None = None
    ) -> DecisionAnswer:
        """Complete the held ``task`` with ``result`` (a JSON value, at most
        ``MAX_RESULT_BYTES`` encoded; ``None`` too), which its dependents get. See
        :meth:`decide`."""
        return await self.decide(task, "complete", attempt=attempt, result=result, reason=reason)

    async def fail(
        self, task: str, *, attempt: int | None = None, reason: str | None = None
    ) -> DecisionAnswer:
        """Fail the held ``task``, as without a hold: its dependents skipped. See
        :meth:`decide`."""
        return await self.decide(task, "fail", attempt=attempt, reason=reason)


def _params(params: Mapping[str, Any] | None) -> Any:
    """``params`` as :class:`Start` takes them: a mapping as a dict (anything else is
    refused by its checks)."""
    return dict(params) if isinstance(params, Mapping) else params
