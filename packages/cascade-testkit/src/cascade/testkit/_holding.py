"""A stand-in for an engine whose run has tasks held for a decision: it answers decisions as
the protocol says an engine does (docs/protocol.md, "Decisions on a held task"), for the tests
of the faces that send them (`cascade retry`, the dashboard, ``cascade.control``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import msgspec

from cascade.interfaces import (
    Connector,
    Envelope,
    Heartbeat,
    Hold,
    InvalidMessageError,
    Message,
    RunSnapshot,
    SnapshotTask,
    TaskStateEvent,
    encode_payload,
    events_topic,
    heartbeat_topic,
    snapshot_topic,
)
from cascade.interfaces.commands import (
    Decided,
    DecisionReply,
    DecisionRequest,
    reply_topic,
    snapshot_request_topic,
)
from cascade.interfaces.summaries import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    summary_messages,
)
from cascade.interfaces.wire import APPROVAL, BlockedTask, command_filter, decode_decision_request

__all__ = ["HeldTask", "HoldingEngine"]

_ENDS = {"retry": "RUNNING", "skip": "SKIPPED", "complete": "COMPLETED", "fail": "FAILED"}


@dataclass
class HeldTask:
    """A task of the stand-in's run: held at ``attempt`` (``held``), or not (decided); a gate
    when it has a ``prompt`` (its hold of kind ``approval``, no error; a retry refused)."""

    task_id: str
    task_name: str
    attempt: int = 1
    error: str = "ValueError: the API is down"
    held: bool = True
    since: float = field(default_factory=time.time)
    deadline: float = field(default_factory=lambda: time.time() + 86_400)
    default: str = "fail"
    decided: dict[int, Decided] = field(default_factory=dict)
    last: SnapshotTask | None = None
    """Its latest event as published (what a snapshot answers with)."""
    prompt: str | None = None

    @property
    def hold(self) -> Hold:
        """The decision hold it is published with."""
        return Hold(
            type="decision",
            attempt=self.attempt,
            deadline=self.deadline,
            default=self.default,
            kind=None if self.prompt is None else APPROVAL,
            prompt=self.prompt,
        )


class HoldingEngine:
    """Runs (as far as a reader can tell) ``run_id`` on ``connector`` (its ``source_id`` is
    the run's owner), with ``tasks`` held, and answers the run's decide commands on its reply
    topic as an engine does: the first decision on a (task, attempt) wins, a later one is
    refused ``already_decided`` with the first; one request id is applied once (a copy gets
    the same answer); a task by name with several held is ``ambiguous``; an attempt not held
    now, ``stale_attempt``; a task not held, ``not_held``; none of that id or name,
    ``unknown_task``; a retry of a gate, ``not_retryable``. A retry holds the task again at
    the next attempt when ``fail_again``. It publishes each held task's ``BLOCKED`` event at
    :meth:`start`, the event a decision leads to, a heartbeat (:meth:`beat`) every
    ``heartbeat_every`` seconds (``None``: when told) and a snapshot when asked for one
    (unless not ``snapshots``, as an engine from before snapshots); with ``summary``, its
    retained summary listing the run with its held tasks counted, as an engine keeps it.
    :meth:`stop` ends its heartbeats.

    :attr:`requests` are the decide requests received, in order; :attr:`applied` those applied.
    """

    def __init__(
        self,
        connector: Connector,
        run_id: str,
        tasks: list[HeldTask],
        *,
        org_id: str = "local",
        project_id: str = "default",
        fail_again: bool = False,
        heartbeat_every: float | None = None,
        snapshots: bool = True,
        summary: bool = False,
    ) -> None:
        self.connector = connector
        self.run_id = run_id
        self.tasks = tasks
        self.org_id = org_id
        self.project_id = project_id
        self.fail_again = fail_again
        self.requests: list[DecisionRequest] = []
        self.applied: list[DecisionRequest] = []
        self._answered: dict[str, DecisionReply] = {}
        self._seq = 0
        self._every = heartbeat_every
        self._snapshots = snapshots
        self._summary = summary
        self._beating: asyncio.Task[None] | None = None

    @property
    def source(self) -> str:
        """The run's owner: the connector's source id."""
        return self.connector.source_id

    async def start(self) -> None:
        """Listen to the run's commands and publish its held tasks' events."""
        await self.connector.subscribe(
            command_filter(self.org_id, self.project_id, self.run_id, self.connector.topic_prefix),
            self._command,
        )
        await self.connector.subscribe(
            snapshot_request_topic(self.run_id, self.connector.topic_prefix), self._command
        )
        for task in self.tasks:
            if task.held:
                await self._event(task, "BLOCKED")
        if self._summary:
            await self._summarize()
        if self._every is not None:
            self._beating = asyncio.create_task(self._beat_every(self._every))

    async def stop(self) -> None:
        """Stop its heartbeats."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating

    async def _beat_every(self, interval: float) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(interval)  # an engine's heartbeat period, not a wait for anything

    async def beat(self) -> None:
        """Publish a heartbeat listing the held tasks (held first, as an engine does)."""
        held = [t for t in self.tasks if t.held]
        blocked = [
            BlockedTask(task_id=t.task_id, task_name=t.task_name, since=t.since, held_by=[t.hold])
            for t in held
        ]
        body = Heartbeat(
            blocked=len(held),
            held=len(held) or msgspec.UNSET,
            last_seq=self._seq,
            blocked_tasks=blocked or msgspec.UNSET,
        )
        topic = heartbeat_topic(
            self.org_id, self.project_id, self.run_id, prefix=self.connector.topic_prefix
        )
        await self.connector.publish(topic, encode_payload(self._envelope(body, None)), qos=1)

    async def _summarize(self) -> None:
        held = sum(t.held for t in self.tasks)
        tally = TaskTally(blocked=held, held=held, completed=len(self.tasks) - held)
        run = SummaryRun(
            run_id=self.run_id,
            org_id=self.org_id,
            project_id=self.project_id,
            status="Running",
            started=datetime.now(timezone.utc).isoformat(),
            tasks=tally,
            last_seq=self._seq,
        )
        summary = EngineSummary(
            source=self.source, runs=RunTally(running=1), tasks=tally, listed=[run]
        )
        for topic, said in summary_messages(summary, self.connector.topic_prefix):
            await self.connector.publish(topic, encode_payload(said), qos=1, retain=True)

    async def _snapshot(self) -> None:
        tasks = [t.last for t in self.tasks if t.last is not None]
        held = sum(t.held for t in self.tasks)
        body = RunSnapshot(
            after=0,
            through=self._seq,
            last_seq=self._seq,
            blocked=held,
            held=held or msgspec.UNSET,
            tasks=tasks,
        )
        topic = snapshot_topic(
            self.org_id, self.project_id, self.run_id, prefix=self.connector.topic_prefix
        )
        await self.connector.publish(topic, encode_payload(self._envelope(body, None)), qos=1)

    async def _command(self, message: Message) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        if kind == "snapshot":
            if self._snapshots:
                await self._snapshot()
            return
        if kind != "decide":
            return
        try:
            request = decode_decision_request(message.raw or message.payload)
        except InvalidMessageError:
            return
        self.requests.append(request)
        reply = self._answered.get(request.id)
        if reply is None:
            reply = self._decide(request)
            self._answered[request.id] = reply
            if reply.applied:
                self.applied.append(request)
                await self._after(request, reply)
        topic = reply_topic(self.org_id, request.id, self.source, self.connector.topic_prefix)
        await self.connector.publish(topic, reply, qos=1)

    def _decide(self, request: DecisionRequest) -> DecisionReply:
        def reply(outcome: str, task: HeldTask | None = None, **more: object) -> DecisionReply:
            about = (
                {}
                if task is None
                else {"task_id": task.task_id, "task_name": task.task_name, "attempt": task.attempt}
            )
            return msgspec.convert(
                {
                    "id": request.id,
                    "run_id": request.run_id,
                    "source": self.source,
                    "decision": request.decision,
                    "outcome": outcome,
                    "issued_by": request.issued_by,
                    "reason": request.reason,
                    "issued_at": request.issued_at,
                    **about,
                    **more,
                },
                DecisionReply,
                from_attributes=True,
            )

        by_id = [t for t in self.tasks if t.task_id == request.task]
        named = by_id or [t for t in self.tasks if t.task_name == request.task]
        if not named:
            return reply("unknown_task")
        held = [t for t in named if t.held]
        if len(held) > 1:
            return reply("ambiguous", candidates=[t.task_id for t in held])
        task = held[0] if held else named[0]
        wanted = task.attempt if request.attempt is None else request.attempt
        if wanted in task.decided:
            return reply("already_decided", task, decided=task.decided[wanted])
        if not task.held:
            last = task.decided[max(task.decided)] if task.decided else None
            return reply("not_held", task, decided=last)
        if wanted != task.attempt:
            return reply("stale_attempt", task)
        if task.prompt is not None and request.decision == "retry":
            return reply("not_retryable", task)
        decided = Decided(
            decision=request.decision,
            attempt=task.attempt,
            by=request.issued_by,
            reason=request.reason,
            at=time.time(),
            id=request.id,
        )
        task.decided[task.attempt] = decided
        task.held = False
        return reply("applied", task, decided=decided)

    async def _after(self, request: DecisionRequest, reply: DecisionReply) -> None:
        task = next(t for t in self.tasks if t.task_id == reply.task_id)
        await self._event(task, _ENDS[request.decision], decided=reply.decided)
        if request.decision == "retry" and self.fail_again:
            task.attempt += 1
            task.held, task.since = True, time.time()
            await self._event(task, "BLOCKED")

    async def _event(self, task: HeldTask, state: str, **more: object) -> None:
        self._seq += 1
        held = (
            {"held_by": [task.hold], "error": task.error if task.prompt is None else ""}
            if state == "BLOCKED"
            else {}
        )
        more = {key: value for key, value in more.items() if value is not None}
        body = msgspec.convert(
            {"task_id": task.task_id, "task_name": task.task_name, "state": state, **held, **more},
            TaskStateEvent,
            from_attributes=True,
        )
        topic = events_topic(
            self.org_id, self.project_id, self.run_id, prefix=self.connector.topic_prefix
        )
        envelope = self._envelope(body, self._seq)
        task.last = msgspec.convert(
            {**msgspec.to_builtins(body), "seq": self._seq, "ts": envelope.ts}, SnapshotTask
        )
        await self.connector.publish(topic, encode_payload(envelope), qos=1)

    def _envelope(
        self, body: TaskStateEvent | Heartbeat | RunSnapshot, seq: int | None
    ) -> Envelope:
        now = datetime.now(timezone.utc).isoformat()
        return Envelope(
            run_id=self.run_id,
            org_id=self.org_id,
            project_id=self.project_id,
            source=self.source,
            seq=msgspec.UNSET if seq is None else seq,
            body=body,
            ts=now,
        )
