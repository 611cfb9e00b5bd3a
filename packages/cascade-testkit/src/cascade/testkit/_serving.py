"""A stand-in for a process that serves named workflows (``Engine.serve``): it announces them
and answers start and rerun requests as the protocol says (docs/protocol.md, "Served
workflows"), and publishes the lifecycle of the runs it "starts", for the tests of the faces
that ask (`cascade served`, `start`, `rerun`, the dashboard, ``cascade.control``) without the
runtime."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from cascade.interfaces import (
    Connector,
    Envelope,
    InvalidMessageError,
    LifecycleEvent,
    Message,
    SubscriptionHandle,
    encode_payload,
    events_topic,
)
from cascade.interfaces.commands import reply_topic
from cascade.interfaces.serving import (
    PlanStep,
    RunOrigin,
    ServedAnnouncement,
    ServedWorkflow,
    StartReply,
    StartRequest,
    served_topic,
)
from cascade.interfaces.wire import (
    RunStatus,
    ServedRun,
    ServedTrigger,
    StartOutcome,
    decode_start_request,
    shared_start_filter,
    start_filter,
)

__all__ = ["KeptRun", "ServingEngine"]


@dataclass
class KeptRun:
    """A run whose results the stand-in keeps, so that it can be rerun: its ``workflow`` and
    the ``params`` it ran with, and the first run of its line (``root_run``, itself when
    ``None``)."""

    workflow: str
    params: dict[str, Any] = field(default_factory=dict)
    root_run: str | None = None


class ServingEngine:
    """Serves ``workflows`` (as announced: their names and params) on ``connector`` (its
    ``source_id`` is the serving process's source), as ``Engine.serve`` does, as far as a
    requester can tell.

    :meth:`start` announces them (retained on ``served/{source}``; again whenever a run starts
    or ends, and at a roll call where the broker needs one) and takes requests addressed to
    it, and with ``shared``, through the shared subscription of each workflow (the broker
    must have them: mosquitto). A request is answered on its reply topic: ``refused`` for a
    workflow it does not serve, a param it does not take or a required one missing (in
    Python's words), a ``rerun_of`` not among ``kept`` (full ids or a unique prefix), or a
    rerun of a run with a rerun live; ``planned`` with ``plan`` for a dry run; else
    ``started`` with a new run id (``queued`` when ``capacity`` runs are live), whose
    ``ENGINE_STARTED`` (its name the workflow's, its ``origin`` the request's) follows the
    answer, then its ``ENGINE_STOPPED`` with ``end`` (``None``: the run stays live until
    :meth:`finish`). One request id is applied once (a copy gets the same answer).
    ``refuse``: every request is refused with that reason; ``answer=False``: none answered;
    ``triggers``: the triggers its announcement lists (each as its fields: ``{"name":
    "report", "workflow": "nightly", "kind": "after", "events": 3}``). :meth:`stop` clears the
    announcement.

    :attr:`requests` are the requests received, in order; :attr:`started` the runs started
    (run id, request); :attr:`live` those not ended.
    """

    def __init__(
        self,
        connector: Connector,
        workflows: list[ServedWorkflow],
        *,
        org_id: str = "local",
        project_id: str = "default",
        shared: bool = False,
        capacity: int = 4,
        end: RunStatus | None = "Succeeded",
        plan: list[PlanStep] | None = None,
        kept: Mapping[str, KeptRun] | None = None,
        refuse: str | None = None,
        answer: bool = True,
        triggers: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.connector = connector
        self.triggers = [msgspec.convert(t, ServedTrigger) for t in triggers]
        self.workflows = {w.name: w for w in workflows}
        self.org_id = org_id
        self.project_id = project_id
        self.shared = shared
        self.capacity = capacity
        self.end = end
        self.plan = list(plan or [])
        self.kept = dict(kept or {})
        self.refuse = refuse
        self.answer = answer
        self.requests: list[StartRequest] = []
        self.started: list[tuple[str, StartRequest]] = []
        self.live: dict[str, ServedRun] = {}
        self._answered: dict[str, StartReply] = {}
        self._handles: list[SubscriptionHandle] = []
        self._seq: dict[str, int] = {}
        self._lock = asyncio.Lock()

    @property
    def source(self) -> str:
        """The serving process's source: the connector's source id."""
        return self.connector.source_id

    @property
    def prefix(self) -> str:
        """The connector's topic prefix."""
        return self.connector.topic_prefix

    @property
    def served_topic(self) -> str:
        """Where it announces: ``{prefix}/served/{org}/{project}/{source}``."""
        return served_topic(self.org_id, self.project_id, self.source, self.prefix)

    def _addressed(self) -> str:
        return start_filter(self.org_id, self.project_id, self.source, self.prefix)

    def announcement(self) -> ServedAnnouncement:
        """What it announces now."""
        return ServedAnnouncement(
            source=self.source,
            org_id=self.org_id,
            project_id=self.project_id,
            workflows=list(self.workflows.values()),
            capacity=self.capacity,
            running=min(len(self.live), self.capacity),
            queued=max(0, len(self.live) - self.capacity),
            live=list(self.live.values()),
            shared=self.shared,
            ts=datetime.now(timezone.utc).isoformat(),
            triggers=self.triggers,
        )

    async def start(self) -> None:
        """Take requests, and announce what it serves."""
        subscribe = self.connector.subscribe
        self._handles.append(await subscribe(self._addressed(), self._take))
        if self.shared:
            for name in self.workflows:
                filter_ = shared_start_filter(self.org_id, self.project_id, name, self.prefix)
                self._handles.append(await subscribe(filter_, self._take))
        self._handles.append(await self.connector.answer_rollcalls(self._called))
        await self.announce()

    async def stop(self) -> None:
        """Stop taking requests and clear the announcement (empty, retained)."""
        for handle in self._handles:
            with contextlib.suppress(Exception):
                await handle.unsubscribe()
        self._handles.clear()
        await self.connector.publish(self.served_topic, b"", qos=1, retain=True)

    async def announce(self) -> None:
        """Publish the announcement (retained)."""
        topic = self.served_topic
        await self.connector.publish(topic, self.announcement(), qos=1, retain=True)

    async def _called(self, message: Message) -> None:
        await self.announce()

    async def finish(self, run_id: str, status: RunStatus = "Succeeded") -> None:
        """End the live run ``run_id`` with ``status``."""
        self.live.pop(run_id)
        await self._lifecycle(run_id, LifecycleEvent(event="ENGINE_STOPPED", status=status))
        await self.announce()

    async def _take(self, message: Message) -> None:
        try:
            request = decode_start_request(message.raw or message.payload)
        except InvalidMessageError:
            return
        async with self._lock:  # one request at a time, as a serving process's loop takes them
            self.requests.append(request)
            reply = self._answered.get(request.id)
            fresh = reply is None
            if reply is None:
                reply = self._answered[request.id] = self._decide(request)
            if self.answer:
                topic = reply_topic(self.org_id, request.id, self.source, self.prefix)
                await self.connector.publish(topic, reply, qos=1)
            if fresh and reply.run_id is not None and reply.outcome == "started":
                await self._run(reply, request)

    def _reply(self, request: StartRequest, outcome: StartOutcome, **more: Any) -> StartReply:
        return StartReply(
            id=request.id,
            source=self.source,
            workflow=request.workflow,
            outcome=outcome,
            issued_by=request.issued_by,
            reason=request.reason,
            issued_at=request.issued_at,
            **more,
        )

    def _decide(self, request: StartRequest) -> StartReply:
        if self.refuse is not None:
            return self._reply(request, "refused", error=self.refuse)
        served = self.workflows.get(request.workflow)
        if served is None:
            return self._reply(
                request, "refused", error=f"{self.source} does not serve {request.workflow}"
            )
        params = dict(request.params)
        rerun_of = root = None
        if request.rerun_of is not None:
            found = [run_id for run_id in self.kept if run_id.startswith(request.rerun_of)]
            if len(found) != 1:
                why = "no run" if not found else "several runs"
                return self._reply(
                    request, "refused", error=f"{why} {request.rerun_of} in the results kept"
                )
            rerun_of = found[0]
            kept = self.kept[rerun_of]
            params = {**kept.params, **params}
            root = kept.root_run or rerun_of
            busy = [r.run_id for r in self.live.values() if r.rerun_of == rerun_of]
            if busy:
                return self._reply(
                    request, "refused", error=f"a rerun of {rerun_of} is live: {busy[0]}"
                )
        bound = _bound(served, params)
        if isinstance(bound, str):
            return self._reply(request, "refused", error=bound)
        if request.dry_run:
            return self._reply(
                request, "planned", rerun_of=rerun_of, plan=self.plan, plan_count=len(self.plan)
            )
        run_id = uuid.uuid4().hex
        self.live[run_id] = ServedRun(run_id=run_id, workflow=served.name, rerun_of=rerun_of)
        self.started.append((run_id, request))
        self.kept[run_id] = KeptRun(served.name, bound, root)
        return self._reply(
            request,
            "started",
            run_id=run_id,
            name=served.name,
            rerun_of=rerun_of,
            queued=len(self.live) > self.capacity,
        )

    async def _run(self, reply: StartReply, request: StartRequest) -> None:
        run_id = reply.run_id
        assert run_id is not None
        kept = self.kept[run_id]
        origin = RunOrigin(
            workflow=request.workflow,
            params=kept.params,
            rerun_of=reply.rerun_of,
            root_run=kept.root_run,
            request_id=request.id,
            issued_by=request.issued_by,
            reason=request.reason,
            issued_at=request.issued_at,
        )
        started = LifecycleEvent(event="ENGINE_STARTED", name=request.workflow, origin=origin)
        await self._lifecycle(run_id, started)
        await self.announce()
        if self.end is not None:
            await self.finish(run_id, self.end)

    async def _lifecycle(self, run_id: str, body: LifecycleEvent) -> None:
        seq = self._seq[run_id] = self._seq.get(run_id, 0) + 1
        envelope = Envelope(
            run_id=run_id,
            org_id=self.org_id,
            project_id=self.project_id,
            source=self.source,
            seq=seq,
            body=body,
            ts=datetime.now(timezone.utc).isoformat(),
        )
        topic = events_topic(
            self.org_id, self.project_id, run_id, prefix=self.prefix, source=self.source
        )
        await self.connector.publish(topic, encode_payload(envelope), qos=1)


def _bound(served: ServedWorkflow, params: dict[str, Any]) -> dict[str, Any] | str:
    """``params`` with the defaults of those not given, or why Python would refuse them."""
    names = {p.name for p in served.params}
    unknown = sorted(set(params) - names)
    if unknown:
        return f"{served.name}() got an unexpected keyword argument {unknown[0]!r}"
    missing = [p.name for p in served.params if p.required and p.name not in params]
    if missing:
        return f"{served.name}() missing 1 required argument: {missing[0]!r}"
    defaults = {p.name: p.default for p in served.params if not p.required}
    return {**defaults, **params}
