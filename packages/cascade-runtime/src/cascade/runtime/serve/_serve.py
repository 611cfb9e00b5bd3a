"""``Engine.serve``: named workflows started by requests over the broker, a few at a time."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import msgspec

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import (
    Connector,
    Constraint,
    InvalidMessageError,
    Message,
    SubscriptionHandle,
    SyncPhase,
    status_filter,
)
from cascade.interfaces.commands import CancelRequest, cancel_topic, reply_topic
from cascade.interfaces.serving import (
    PlanStep,
    ServedAnnouncement,
    ServedWorkflow,
    StartReply,
    StartRequest,
    start_topic,
)
from cascade.interfaces.wire import (
    MAX_CONTROL_PAYLOAD_BYTES,
    SHARED_GROUP,
    new_request_id,
    start_filter,
)

from .._events import Event, RunFinished
from .._run_life import RunRequest
from .._steps import StepFailed, describe, explain, within
from ..link._link_context import LinkContext
from ..results._results import ResultStore
from ._admission import ERROR_CHARS, Admission, _Busy, _Refused, _Unclaimed
from ._announce import Announcer, Peers
from ._carry_on import (
    DEFAULT_MAX_CARRY_ONS,
    CarryOns,
    OnEngineLost,
    engine_lost_policies,
    fence,
)
from ._own_starts import OwnStarts
from ._schedule import Schedule
from ._schedule_pauses import SchedulePauses
from ._scheduler import Clock, check_schedules
from ._serve_requests import Answers, read_request, server_made
from ._served_runs import Accepted, ServedRuns
from ._served_workflows import Served, served_functions
from ._shared_probe import PROBE_MIN_WAIT, probe_topic
from ._slot_claims import SlotClaims
from ._store_probe import probe_store
from ._trigger import Trigger
from ._triggers import Triggers, check_triggers

__all__ = ["Server"]

_log = logging.getLogger("cascade.runtime.serve")

_MAX_LIVE = 256  # ServedAnnouncement.live's bound
_encode = msgspec.json.Encoder().encode
_SERVING: weakref.WeakSet[Connector] = weakref.WeakSet()  # connectors an engine serves on


class Server:
    """Serves ``workflows`` through ``context`` (what the engine hands it) until cancelled,
    each run by ``run`` (the engine's ``_run_target``, given the graph its check built), a
    rerun planned by ``plan`` (its :meth:`~cascade.runtime.Engine.plan` of that graph) from
    ``results``; the engine's
    :meth:`serve <cascade.runtime.Engine.serve>` says what it does."""

    def __init__(
        self,
        context: LinkContext,
        workflows: Mapping[str, Any],
        run: Callable[[RunRequest], Awaitable[Any]],
        *,
        plan: Callable[..., Awaitable[list[PlanStep]]],
        results: ResultStore | None,
        manage_connection: bool | None,
        max_runs: int,
        max_queued: int,
        schedules: Mapping[str, Schedule] | None = None,
        on_engine_lost: OnEngineLost | Mapping[str, OnEngineLost] = "carry-on",
        max_carry_ons: int = DEFAULT_MAX_CARRY_ONS,
        triggers: Mapping[str, Trigger] | None = None,
    ) -> None:
        self._context = context
        self._results = results
        self._manage_connection = manage_connection
        self._connector: Connector = context.connector
        self._prefix = context.topic_prefix
        self._workflows = served_functions(workflows)
        schedules = dict(schedules or {})
        check_schedules(schedules, self._workflows)
        triggers = dict(triggers or {})
        check_triggers(triggers, self._workflows)
        self._answers = Answers()
        self._handling: set[asyncio.Task[None]] = set()
        self._carry_ons, self._peers = self._fleet(on_engine_lost, max_carry_ons)
        self._handles: list[SubscriptionHandle] = []
        self._own_handle: SubscriptionHandle | None = None
        self._shared = False
        self._ready = False  # subscribed and announcing: the probe may run
        self._stopping = False
        self._probe: asyncio.Task[None] | None = None
        self._log = RateLimitedLogger(_log)
        self._announcer = Announcer(
            self._connector,
            self._prefix,
            self._announcement,
            org_id=context.org_id,
            project_id=context.project_id,
        )
        self._runs = ServedRuns(
            run,
            max_runs=max_runs,
            max_queued=max_queued,
            changed=self._runs_changed,
            cancel=lambda run_id, reason: context.cancel(
                run_id, issued_by=self._connector.source_id, reason=reason
            ),
        )
        self._schedules = schedules
        self._claims = SlotClaims(self._connector, self._prefix, context.org_id, context.project_id)
        self._sharing: set[str] = set()  # servers known to keep their results in this one's store
        self._clock = Clock(schedules, self._claims, self, context.stats, self._announcer.changed)
        self._pauses = SchedulePauses(
            self._connector,
            self._prefix,
            self._pauses_changed,
            place=(context.org_id, context.project_id),
        )
        self._admission = Admission(
            self._connector.source_id,
            self._workflows,
            runs=self._runs,
            results=results,
            plan=plan,
            peers=self._peers,
            pauses=self._pauses,
            schedules=schedules,
            claims=self._claims,
            stats=context.stats,
        )
        self._starts = OwnStarts(
            self._connector.source_id, self._admission, self._answers, self._runs.launch
        )
        self._triggers = Triggers(
            triggers,
            self._connector,
            self._prefix,
            context.org_id,
            context.project_id,
            self,
            context.stats,
            self._announcer.changed,
            starts=self._starts,
        )

    def _fleet(
        self,
        on_engine_lost: OnEngineLost | Mapping[str, OnEngineLost],
        max_carry_ons: int,
    ) -> tuple[CarryOns, Peers]:
        """What this server hears of its peers (their announcements: their live runs, their
        slots fired, their deaths) and what it carries on of the runs of those that die."""
        context, me = self._context, self._connector.source_id
        carry_ons = CarryOns(
            engine_lost_policies(on_engine_lost, self._workflows),
            self._results,
            lambda lost: self._starts.carry(lost),
            own_runs=lambda: {entry.run_id for entry in self._runs.live(_MAX_LIVE)},
            stats=context.stats,
            max_carry_ons=max_carry_ons,
            changed=self._runs_changed,
            cancel=lambda run_id, reason: self.cancel_run(me, run_id, reason),
        )
        peers = Peers(
            me,
            self._runs_changed,
            lambda *fired: self._clock.peer_fired(*fired),
            carry_ons.lost,
            org_id=context.org_id,
            project_id=context.project_id,
            prefix=self._prefix,
        )
        return carry_ons, peers

    async def serve(self) -> None:
        """Connect (when the engine manages the connection), take requests, announce; on
        cancellation, stop the runs, clear the announcement and disconnect."""
        context, connector = self._context, self._connector
        try:
            taken = connector in _SERVING
            _SERVING.add(connector)
        except TypeError:  # a connector that cannot be weakly referenced: not guarded
            taken = False
        else:
            if taken:
                raise RuntimeError(
                    f"{connector.source_id} serves already: one serving engine a connector "
                    "(each would take every request addressed to its source)"
                )
        try:
            await self._serve(context, connector)
        finally:
            _SERVING.discard(connector)

    async def _serve(self, context: LinkContext, connector: Connector) -> None:
        manage = (
            not connector.is_connected
            if self._manage_connection is None
            else self._manage_connection
        )
        unsubscribe_bus = context.events.subscribe(self._runs.on_event)
        unsubscribe_ends = context.events.subscribe(self._on_event)
        try:
            if manage:
                await connector.connect()
            source = connector.source_id
            addressed = start_filter(context.org_id, context.project_id, source, self._prefix)
            await self._subscribe(addressed, self._on_request, self._resubscribed)
            await self._subscribe(self._peers.filter, self._peers)
            # its own announcement, left by a process of its source that died (retained: the
            # wildcard above does not get it on a broker that sends retained messages only to
            # exact subscriptions); heard before its first own announcement goes out
            self._own_handle = await connector.subscribe(self._announcer.topic, self._own_left)
            # who is offline: a dead server's runs carried on, its runs of schedules not counted
            await self._subscribe(status_filter(self._prefix), self._peers.on_status)
            # the pauses of its workflows (and schedules): heard before it takes a request
            await self._pauses.start()
            if self._schedules:
                await self._claims.start()
            if self._schedules or self._triggers:
                await self._enter_store()
            await self._triggers.start()
            if self._results is not None:  # said when known; serving goes on meanwhile
                self._spawn(probe_store(self._results, context.stats), "cascade-store-probe")
            await self._announcer.start()
            names = ", ".join(self._workflows)
            _log.info("serving %s as %s (%d runs at once)", names, source, self._runs.max_runs)
            self._clock.start()
            self._ready = True
            self._probe_once_connected()
            await asyncio.Event().wait()  # until cancelled
        finally:
            probe = self._probe
            if probe is not None:
                probe.cancel()
                await asyncio.gather(probe, return_exceptions=True)
            await self._stop(manage)
            unsubscribe_ends()
            unsubscribe_bus()

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _own_left(self, message: Message) -> None:
        self._peers(message)
        handle, self._own_handle = self._own_handle, None
        if handle is not None:  # the first heard is all it is for
            await handle.unsubscribe()

    async def _subscribe(
        self,
        topic_filter: str,
        callback: Callable[[Message], Any],
        on_sync: Callable[[SyncPhase], None] | None = None,
    ) -> None:
        self._handles.append(
            await self._connector.subscribe(topic_filter, callback, on_sync=on_sync)
        )

    def _resubscribed(self, phase: SyncPhase) -> None:
        """Subscribed (a new connection): announce again, for a broker that lost its
        retained messages (a restart without persistence), and probe if not done yet."""
        if phase == "end":
            self._announcer.changed()
            self._probe_once_connected()
            if self._runs.running:
                self._spawn(
                    fence(
                        self._results,
                        self._connector.source_id,
                        list(self._runs.running),
                        self._context.cancel,
                    ),
                    "cascade-served-fence",
                )

    def _probe_once_connected(self) -> None:
        """Once serving and connected (what the broker does is known then): probe."""
        if self._ready and self._probe is None and self._connector.is_connected:
            self._probe = asyncio.get_running_loop().create_task(
                self._find_shared(), name="cascade-served-probe"
            )

    async def _find_shared(self) -> None:
        """Where the broker has shared subscriptions, take requests through them too.

        (Where it has none, the other servers' announcements come when they change, or when a
        requester calls the roll, as ``cascade start`` does before it picks a server.)"""
        connector = self._connector
        wait = max(self._context.connect_wait, PROBE_MIN_WAIT)
        context = self._context
        org, project = context.org_id, context.project_id
        shared = await connector.subscribe_shared(
            SHARED_GROUP,
            [start_topic(org, project, name, self._prefix) for name in self._workflows],
            self._on_request,
            probe=probe_topic(org, project, connector.source_id, self._prefix),
            timeout=wait,
        )
        if not shared:
            _log.info(
                "the broker has no shared subscriptions (or did not answer within %g s): "
                "this engine takes only the start requests addressed to it",
                wait,
            )
            return
        self._handles.extend(shared)
        self._shared = True
        self._announcer.changed()

    async def _stop(self, manage: bool) -> None:
        context = self._context
        timeout = context.shutdown_timeout
        self._stopping = True
        await self._clock.stop()
        await self._carry_ons.stop()
        try:
            async with within("stop the triggers", timeout, "shutdown_timeout"):
                await self._triggers.stop()
        except StepFailed as exc:
            _log.warning("%s", exc)
        for subscribed in (self._pauses, self._claims):
            try:
                async with within("unsubscribe from the schedules", timeout, "shutdown_timeout"):
                    await subscribed.stop()
            except StepFailed as exc:
                _log.warning("%s", exc)
        own, self._own_handle = self._own_handle, None
        if own is not None:
            self._handles.append(own)
        for handle in self._handles:
            try:
                async with within("unsubscribe from start requests", timeout, "shutdown_timeout"):
                    await handle.unsubscribe()
            except StepFailed as exc:
                _log.warning("%s", exc)
        for task in self._handling:
            task.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)
        source = self._connector.source_id
        await self._runs.stop(
            lambda run_id: context.cancel(run_id, issued_by=source, reason="serving stopped")
        )
        await self._announcer.stop(timeout)
        if manage:
            await context.ended_runs.close_all()  # its served runs' (the connection goes)
            try:
                async with within("disconnect", timeout, "shutdown_timeout"):
                    await self._connector.disconnect()
            except StepFailed as exc:
                _log.warning("%s", exc)

    # -- the announcement -----------------------------------------------------------------

    def _announcement(self) -> ServedAnnouncement:
        announcement = self._listing()
        while len(announcement.live) > 1 and len(_encode(announcement)) > MAX_CONTROL_PAYLOAD_BYTES:
            announcement.live = announcement.live[: len(announcement.live) // 2]
        return announcement

    def _listing(self) -> ServedAnnouncement:
        context = self._context
        return ServedAnnouncement(
            source=self._connector.source_id,
            org_id=context.org_id,
            project_id=context.project_id,
            workflows=[self._described(name, w) for name, w in self._workflows.items()],
            capacity=self._runs.max_runs,
            running=len(self._runs.running),
            queued=len(self._runs.queue),
            live=self._runs.live(_MAX_LIVE),
            shared=self._shared,
            ts=datetime.now(timezone.utc).isoformat(),
            schedules=self._clock.described(),
            triggers=self._triggers.described(),
        )

    # -- requests ---------------------------------------------------------------------------

    async def _on_request(self, message: Message) -> None:
        stats = self._context.stats
        try:
            request = read_request(message, self._prefix)
            topic = reply_topic(
                self._context.org_id, request.id, self._connector.source_id, self._prefix
            )
        except InvalidMessageError as exc:
            stats.starts_rejected += 1
            self._log.warning("rejected", "rejected a start request on %r: %s", message.topic, exc)
            return
        reserved = server_made(request)
        if reserved is not None:  # its claim would keep a carry-on or a slot from starting
            stats.starts_refused += 1
            stats.starts_reserved += 1
            self._log.warning("reserved", "refused start request %s: %s", request.id, reserved)
            await self._send(topic, self._admission.reply(request, "refused", error=reserved))
            return
        seen = self._answers.seen(request.id)
        if seen is not False:
            stats.starts_duplicated += 1
            if isinstance(seen, StartReply):
                await self._send(topic, seen)
            return
        task = asyncio.create_task(self._answer(request, topic), name="cascade-start-request")
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _answer(self, request: StartRequest, topic: str) -> None:
        """Take or refuse ``request``, answer it, and start its run when it may."""
        stats = self._context.stats
        accepted: Accepted | None = None
        try:
            if request.backfill is not None:
                reply, accepted = await self._admission.take_backfill(request, request.backfill)
            else:
                reply, accepted = await self._admission.take(request)
        except _Refused as exc:
            stats.starts_refused += 1
            reply = self._admission.reply(request, "refused", error=str(exc)[:ERROR_CHARS])
            if isinstance(exc, (_Busy, _Unclaimed)) and request.backfill is not None:
                self._answers.forget(request.id)  # its slot left unclaimed: asked again afresh
                await self._send(topic, reply)
                return
        except Exception as exc:  # the workflow's own code, or the results store
            stats.starts_refused += 1
            _log.warning("start request %s failed: %s", request.id, explain(exc))
            reply = self._admission.reply(request, "refused", error=describe(exc)[:ERROR_CHARS])
        else:
            stats.starts_taken += 1
        self._answers.answered(reply)
        await self._send(topic, reply)
        if accepted is not None:
            self._runs.launch(accepted)
            if request.backfill is not None:
                slot = datetime.fromisoformat(request.backfill.slot)
                self._clock.fired(request.backfill.schedule, slot, accepted.run_id)

    # -- schedules (the clock's hooks) ------------------------------------------------------

    def _runs_changed(self) -> None:
        self._announcer.changed()
        self._clock.runs_changed()
        self._triggers.runs_changed()

    def _pauses_changed(self) -> None:
        self._announcer.changed()
        self._triggers.runs_changed()  # a trigger resumed: its waiting events start

    # -- triggers (their hooks) -------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """A served run ended: the triggers say so (a run this server's stop cancels ends by
        no doing of its own, and is not said)."""
        if isinstance(event, RunFinished) and not self._stopping:
            entry = self._runs.running.get(event.run_id)
            if entry is not None:
                self._triggers.say_ended(event, entry.workflow, entry.request.origin)

    def trigger_pause(self, name: str) -> Constraint | None:
        """The pause that holds trigger ``name``: its own, or its workflow's."""
        own = self._pauses.pause(name, "trigger")
        if own is not None:
            return own
        return self._pauses.pause(self._triggers.workflow(name), "workflow")

    def hold(self) -> str | None:
        return self._runs.hold()

    def unhold(self) -> None:
        self._runs.unhold()

    async def start_slot(
        self, name: str, schedule: Schedule, slot: datetime, *, by_store: bool = False
    ) -> str:
        return await self._starts.slot(name, schedule, slot, by_store=by_store)

    async def take_slot(self, name: str, slot: datetime, *, by_store: bool = False) -> bool:
        return await self._starts.take_slot(name, slot, by_store=by_store)

    async def _enter_store(self) -> None:
        """Say in the results store that this server keeps its results there, so that the
        servers sharing it let the store decide the slots they both claim (store_decides)."""
        store = self._results
        if store is None:
            return
        try:
            await asyncio.to_thread(store.enter_server, self._connector.source_id)
        except Exception as exc:  # the claims on the broker alone decide this server's slots
            _log.warning("cannot write to results store %s: %s", store.url, explain(exc))

    async def store_decides(self, source: str) -> bool:
        store = self._results
        if store is None or source == self._connector.source_id:
            return False
        if source not in self._sharing:
            try:
                if not await asyncio.to_thread(store.shared_with, source):
                    return False
            except Exception as exc:  # the store unreachable: the claim alone decides
                _log.warning(
                    "cannot tell whether %s shares results store %s: %s",
                    source,
                    store.url,
                    explain(exc),
                )
                return False
            self._sharing.add(source)
        return True

    def live_runs(self, name: str) -> list[tuple[str, str]]:
        source = self._connector.source_id
        here = [(source, entry.run_id) for entry in self._runs.scheduled(name)]
        schedule = self._schedules[name]
        workflow = schedule.workflow or name
        carried = [(source, run_id) for run_id in self._carry_ons.scheduled(name, workflow)]
        return here + carried + self._peers.scheduled(name, workflow)

    def cancel_run(self, source: str, run_id: str, reason: str) -> None:
        me = self._connector.source_id
        if source == me:
            if self._carry_ons.abandon(run_id, reason):
                return  # its carry-on was under way: it is left lost, or stopped once started
            cancelled = self._context.cancel(run_id, issued_by=me, reason=reason)
            # not begun by the engine yet: once it has; queued: it never starts
            if cancelled is None and not self._runs.cancel_at_start(run_id, reason):
                self._runs.drop_queued(run_id)
            return
        context = self._context
        topic = cancel_topic(context.org_id, context.project_id, run_id, self._prefix)
        request = CancelRequest(
            id=new_request_id(), run_id=run_id, issued_by=me, reason=reason, issued_at=time.time()
        )
        task = asyncio.create_task(self._connector.publish(topic, request, qos=1))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    def pause(self, name: str) -> Constraint | None:
        """The pause that holds the schedule ``name``'s slots: its own, or its workflow's."""
        schedule = self._schedules.get(name)
        workflow = (schedule.workflow or name) if schedule is not None else None
        own = self._pauses.pause(name)
        if own is not None or workflow is None:
            return own
        return self._pauses.pause(workflow, "workflow")

    def _described(self, name: str, served: Served) -> ServedWorkflow:
        """What the announcement says of the workflow ``name``: its pause too, while held."""
        pause = self._pauses.pause(name, "workflow")
        if pause is None:
            return served.described
        return msgspec.structs.replace(
            served.described,
            paused=True,
            paused_by=pause.issued_by if isinstance(pause.issued_by, str) else "",
            paused_reason=pause.reason if isinstance(pause.reason, str) else "",
            paused_until=pause.expires_at or 0.0,
        )

    async def _send(self, topic: str, reply: StartReply) -> None:
        try:
            await self._connector.publish(topic, reply, qos=1)
        except Exception as exc:
            self._log.warning("reply", "could not answer a start request: %s", explain(exc))
