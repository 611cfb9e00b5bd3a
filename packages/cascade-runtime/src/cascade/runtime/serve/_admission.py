"""Whether a start request starts a run here, and the run it starts: the workflow served and
not paused, room for it, its params typed at the door, its target built once, a rerun's run
found and planned, its request (and its rerun) taken once in a shared results store; a
backfill's slot claimed first. :class:`Admission` answers; the server sends the answer and
launches the run."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import msgspec

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces.serving import PlanStep, RunOrigin, StartReply, StartRequest
from cascade.interfaces.wire import MAX_PLAN_STEPS, BackfillSlot, slot_request_id

from .._run_life import Prepared, RunRequest, prepare
from .._stats import EngineStats
from .._steps import describe, explain
from ..results._results import Claim, ResultStore
from ._announce import Peers
from ._carry_on import LostRun, carried_target
from ._schedule import Schedule
from ._schedule_pauses import SchedulePauses
from ._served_runs import Accepted, ServedRuns
from ._served_workflows import Served
from ._slot_claims import SlotClaims
from ._trigger import Fired

__all__ = ["ERROR_CHARS", "Admission", "_Busy", "_Refused", "_Taken", "_Unclaimed"]

_log = logging.getLogger("cascade.runtime.serve")

_BACKFILL_WAIT = 10.0  # seconds a backfill's claim of its slot waits to be heard back


ERROR_CHARS = 4000
"""The most characters of a refusal's error a reply carries (its field takes 16 KiB)."""


def _holder(claim: Claim) -> str:
    """The run a claim names, said."""
    if not claim.run_id:
        return "its claim in the results store cannot be read"
    return f"{claim.run_id} on {claim.source}"


def _origin(
    request: StartRequest,
    bound: dict[str, Any],
    rerun_of: str | None,
    root_run: str | None,
    slot: tuple[str, datetime] | None,
    carried: LostRun | None,
    fired: Fired | None = None,
) -> RunOrigin:
    """Where a run ``request`` starts comes from, as its start says: the request (and the
    schedule's ``slot`` it fills, or the trigger and event that ``fired`` it), or the origin of
    the run it carries on, carried once more."""
    if carried is not None:
        return msgspec.structs.replace(
            carried.origin,
            params=bound,
            rerun_of=rerun_of,
            root_run=root_run,
            carried_on_from=carried.run_id,
            lost_engine=carried.source,
            carry_ons=carried.origin.carry_ons + 1,
        )
    return RunOrigin(
        workflow=request.workflow,
        params=bound,
        rerun_of=rerun_of,
        root_run=root_run,
        request_id=request.id,
        issued_by=request.issued_by,
        reason=request.reason,
        issued_at=request.issued_at if request.issued_at is not None else time.time(),
        schedule=slot[0] if slot else None,
        scheduled_for=slot[1].isoformat() if slot else None,
        trigger=fired.trigger if fired else None,
        trigger_event=fired.event[:1024] if fired else None,
        followed_run=fired.followed_run if fired else None,
        trigger_depth=fired.depth if fired else 0,
    )


class _Refused(Exception):
    """A request refused; the message says why (the answer's ``error``)."""


class _Taken(_Refused):
    """A request refused: another server took its id in the results store they share."""


class _Busy(_Refused):
    """A request refused: no room for its run here now."""


class _Unclaimed(_Refused):
    """A backfill refused before its slot was claimed (its answer, under the slot's request
    id, is not remembered: the slot's backfill asked again is considered afresh)."""


class Admission:
    """Takes start requests for a server (``source``) of ``workflows``: :meth:`take` answers
    one and makes the run it starts (reserved a place in ``runs``, or queued), or raises
    :class:`_Refused` saying why."""

    def __init__(
        self,
        source: str,
        workflows: Mapping[str, Served],
        *,
        runs: ServedRuns,
        results: ResultStore | None,
        plan: Callable[..., Awaitable[list[PlanStep]]],
        peers: Peers,
        pauses: SchedulePauses,
        schedules: Mapping[str, Schedule],
        claims: SlotClaims,
        stats: EngineStats,
    ) -> None:
        self._source = source
        self._workflows = workflows
        self._runs = runs
        self._results = results
        self._plan_rerun = plan
        self._peers = peers
        self._pauses = pauses
        self._schedules = schedules
        self._claims = claims
        self._stats = stats
        self._log = RateLimitedLogger(_log)

    async def take(
        self,
        request: StartRequest,
        slot: tuple[str, datetime] | None = None,
        *,
        held: bool = False,
        carried: LostRun | None = None,
        by_store: bool = False,
        fired: Fired | None = None,
    ) -> tuple[StartReply, Accepted | None]:
        """The answer to ``request`` and, when it starts a run, that run (reserved a slot, or
        queued); raises :class:`_Refused`. ``slot``: the schedule and slot it fills;
        ``held``: a place is held for its run (:meth:`ServedRuns.hold`), which it takes;
        ``carried``: the run it carries on, whose origin it keeps; ``by_store``: only the
        results store's claim lets it start (a slot whose claim went to another server);
        ``fired``: the trigger and event it starts on."""
        served = self._workflows.get(request.workflow)
        if served is None:
            raise _Refused(
                f"{self._source} does not serve {request.workflow!r} "
                f"(it serves {', '.join(self._workflows)})"
            )
        pause = self._pauses.pause(request.workflow, "workflow")
        if pause is not None and not request.dry_run:
            by = pause.issued_by if isinstance(pause.issued_by, str) and pause.issued_by else ""
            why = pause.reason if isinstance(pause.reason, str) and pause.reason else ""
            raise _Refused(
                f"{request.workflow} is paused{f' by {by}' if by else ''}"
                f"{f': {why}' if why else ''}: it starts no new run until resumed "
                f"(cascade resume workflow:{request.workflow})"
            )
        if not request.dry_run and not held:
            self._check_room()  # before the workflow's code or the store is asked anything
        params = dict(request.params)
        rerun_of = root_run = None
        if request.rerun_of is not None:
            rerun_of, root_run, params = await self._rerun_params(request.rerun_of, request, params)
        try:
            params = served.convert(params)  # typed at the door: before any code runs
            bound = served.bind(params)
        except TypeError as exc:  # ParamError too
            raise _Refused(f"{request.workflow}: {exc}") from None
        prepared = await self._target(served, params, carried)
        plan: dict[str, Any] = {}
        if rerun_of is not None:
            steps = await self._plan(prepared, request, rerun_of, served.run_params(params))
            plan = {"rerun_of": rerun_of, "plan": steps[:MAX_PLAN_STEPS], "plan_count": len(steps)}
        if request.dry_run:
            return self.reply(request, "planned", **plan), None
        live = None if rerun_of is None else self._live_rerun(rerun_of)
        if live is not None:  # again: another request may have started one meanwhile
            raise _Refused(f"a rerun of {rerun_of} is live: {live}")
        origin = _origin(request, bound, rerun_of, root_run, slot, carried, fired)
        run = RunRequest(
            prepared=prepared,
            params=served.run_params(params),
            name=request.workflow,
            origin=origin,
            rerun_of=rerun_of,
            rerun=request.rerun,
            from_task=request.from_task,
        )
        claims = await self.claim(request, rerun_of, run.run_id, by_store=by_store)
        try:
            if not held:
                self._check_room()  # again: others may have taken the room meanwhile
        except _Refused:
            await self._release(claims)
            raise
        accepted = Accepted(run, request.workflow, slot[0] if slot else None)
        # its slot (or place), before the answer is sent
        queued = self._runs.accept(accepted, held=held)
        reply = self.reply(
            request,
            "started",
            run_id=accepted.run_id,
            name=request.workflow,
            queued=queued,
            **plan,
        )
        return reply, accepted

    async def take_backfill(
        self, request: StartRequest, asked: BackfillSlot
    ) -> tuple[StartReply, Accepted | None]:
        """Take a backfill's start request: the past slot it names is claimed as the clock
        would claim it, and started only if no claim was there before (asked twice, or a
        slot its clock fired, it is refused: "claimed already"). A place for its run is held
        before the claim, so a slot is claimed only when its run starts or is queued: refused
        as busy, it is left unclaimed, to ask again. A backfill starts its schedule's workflow
        with its params: one asking for a rerun (or a rerun's dry run) is refused before any
        claim. Refused before the claim, the slot is asked afresh (:class:`_Unclaimed`)."""
        name = asked.schedule
        schedule = self._schedules.get(name)
        if schedule is None:
            raise _Unclaimed(f"{self._source} does not serve schedule {name!r}")
        try:
            slot = datetime.fromisoformat(asked.slot)
        except ValueError:
            slot = None
        if slot is None or slot.tzinfo is None or not schedule.is_slot(slot):
            raise _Unclaimed(f"{asked.slot!r} is not a slot of schedule {name}")
        if request.id != slot_request_id(name, slot):
            raise _Unclaimed(
                f"a backfill's request id is its slot's: {slot_request_id(name, slot)}"
            )
        if request.workflow != (schedule.workflow or name):
            raise _Unclaimed(f"schedule {name} starts {schedule.workflow or name!r}")
        if request.rerun_of is not None or request.dry_run:
            raise _Unclaimed(
                f"a backfill starts its schedule's run ({name}, with its params): no rerun_of "
                "nor dry_run; nothing was claimed"
            )
        if slot > datetime.now(timezone.utc):
            raise _Unclaimed(f"slot {slot.isoformat()} of {name} is to come: its clock fires it")
        busy = self._runs.hold()
        if busy is not None:
            raise _Busy(
                f"{busy}: slot {slot.isoformat()} of {name} is left unclaimed; ask again once a "
                "run here ends (its announcement's running and queued say)"
            )
        accepted: Accepted | None = None
        try:
            won, first = await self._claims.claim(name, slot, backfill=True, wait=_BACKFILL_WAIT)
            if first is None:
                raise _Refused(f"the claim of slot {slot.isoformat()} was not heard back in time")
            if not won:
                by = " (a backfill)" if first.backfill else ""
                raise _Refused(
                    f"slot {slot.isoformat()} of {name} was claimed already by {first.source}{by}"
                )
            self._stats.slots_backfilled += 1
            scheduled = msgspec.structs.replace(request, params=dict(schedule.params))
            reply, accepted = await self.take(scheduled, (name, slot), held=True)
            return reply, accepted
        finally:
            if accepted is None:
                self._runs.unhold()

    async def claim(
        self, request: StartRequest, rerun_of: str | None, run_id: str, *, by_store: bool = False
    ) -> list[Claim]:
        """Take ``request`` (and the rerun of ``rerun_of``) for the run ``run_id`` in the
        results store, once across the servers that share it; raises :class:`_Refused` when
        another took it first. A store that cannot take claims (no exclusive create) leaves
        reruns one at a time by the servers' announcements only, and says so; ``by_store``:
        the store alone may let it start, so one that cannot take it refuses it."""
        store = self._results
        if store is None:
            return []
        mine = Claim(run_id=run_id, source=self._source, at=time.time())

        def take() -> tuple[list[Claim], _Refused | None]:
            held = store.claim_start(request.id, mine)
            if held.run_id != run_id:
                return [], _Taken(f"request {request.id} was taken already: {_holder(held)}")
            if rerun_of is None:
                return [held], None
            rerun = store.claim_rerun(rerun_of, mine)
            if rerun.run_id != run_id:
                store.release(held)
                return [], _Refused(f"already rerun as {_holder(rerun)}")
            return [held, rerun], None

        try:
            claims, refused = await asyncio.to_thread(take)
        except Exception as exc:  # the store: unreachable, or without an exclusive create
            if by_store:
                raise _Taken(
                    f"the results store {store.url} cannot take it: {explain(exc)}"
                ) from None
            self._log.warning(
                "claims",
                "cannot take start request %s in the results store %s (%s): only "
                "the announcements keep its reruns one at a time",
                request.id,
                store.url,
                explain(exc),
            )
            return []
        if refused is not None:
            raise refused
        return claims

    async def _release(self, claims: list[Claim]) -> None:
        store = self._results
        if store is not None and claims:
            try:
                for claim in claims:
                    await asyncio.to_thread(store.release, claim)
            except Exception as exc:
                self._log.warning("claims", "cannot release a claim: %s", explain(exc))

    def _check_room(self) -> None:
        busy = self._runs.busy()
        if busy is not None:
            raise _Busy(busy)

    async def _rerun_params(
        self, prefix: str, request: StartRequest, params: dict[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        """The run ``request`` reruns (``prefix``, its id or a prefix of it: its full id), the
        first run of its line, and the params to rerun it with (those it ran with, updated by
        the request's)."""
        results = self._results
        if results is None:
            raise _Refused(f"this engine keeps no results: it cannot rerun {request.rerun_of}")
        try:  # the store may be remote: read in a thread, as the engine does
            rerun_of = await asyncio.to_thread(results.resolve, prefix)
            manifest = await asyncio.to_thread(results.manifest, rerun_of)
        except ValueError as exc:  # RerunError: not there, ambiguous, unreadable
            raise _Refused(str(exc)) from None
        if manifest.workflow is not None and manifest.workflow != request.workflow:
            raise _Refused(
                f"run {rerun_of} ran workflow {manifest.workflow!r}, not {request.workflow!r}"
            )
        live = self._live_rerun(rerun_of)
        if live is not None:
            raise _Refused(f"a rerun of {rerun_of} is live: {live}")
        root_run = manifest.root_run or rerun_of
        return rerun_of, root_run, {**(manifest.params or {}), **params}

    def _live_rerun(self, rerun_of: str) -> str | None:
        """What reruns ``rerun_of`` now, here or at another server; ``None`` if nothing."""
        entry = self._runs.rerunning(rerun_of)
        if entry is not None:
            return f"{entry.run_id} on {self._source}"
        source = self._peers.rerunning(rerun_of)
        return None if source is None else f"on {source}"

    async def _target(
        self, served: Served, params: Mapping[str, Any], carried: LostRun | None = None
    ) -> Prepared:
        """The workflow's target for ``params``, its graph built once, for its run: a bad
        target is refused now, not as a failed run, and so is a task cached in a store this
        engine does not keep. A carry-on held for a decision waits for it (``carried``)."""
        try:
            target = await served.target(params)
            if carried is not None:
                target = carried_target(target, carried)
            return prepare(target, self._results)
        except Exception as exc:
            raise _Refused(f"{served.name}(...) raised {describe(exc)}") from None

    async def _plan(
        self,
        prepared: Prepared,
        request: StartRequest,
        rerun_of: str,
        params: Mapping[str, Any] | None,
    ) -> list[PlanStep]:
        try:
            return await self._plan_rerun(
                prepared,
                rerun_of=rerun_of,
                rerun=request.rerun,
                from_task=request.from_task,
                params=params,
            )
        except ValueError as exc:  # RerunError: from_task not in the graph, ...
            raise _Refused(str(exc)) from None

    def reply(self, request: StartRequest, outcome: Any, **fields: Any) -> StartReply:
        return StartReply(
            id=request.id,
            source=self._source,
            workflow=request.workflow,
            outcome=outcome,
            issued_by=request.issued_by,
            reason=request.reason,
            issued_at=request.issued_at,
            **fields,
        )
