"""A serving engine's clock: each of its schedules' slots claimed across the fleet when it
comes (:mod:`._slot_claims`), and fired by the server that won it, as the schedule's overlap
says while a run of it lives; slots missed during an outage caught up as its catchup says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from cascade.connector_kit import cancel_all
from cascade.interfaces import Constraint
from cascade.interfaces.serving import ServedSchedule
from cascade.interfaces.wire import check_workflow_name, split_scope

from .._errors import CascadeRuntimeError
from .._stats import EngineStats
from .._steps import explain
from ._schedule import CATCHUP_MAX, Schedule
from ._slot_claims import SlotClaims

__all__ = ["Clock", "ScheduleHooks", "SlotTaken", "check_schedules", "check_starters"]

_log = logging.getLogger("cascade.runtime.serve")
_MAX_SLEEP = 30.0  # the clock looks at the wall clock again at least this often (it may jump)
_MAX_SCHEDULES = 256
_FIRED_KEPT = 16  # slots of a schedule fired here, remembered to tell a peer's double
_UPCOMING = 4  # slots after the next one the announcement lists


def _said(note: object) -> str:
    """A constraint's optional note (``reason``, ``issued_by``) as text; empty when unset."""
    return note if isinstance(note, str) else ""


class SlotTaken(CascadeRuntimeError):
    """A slot's start refused: another server started its run (the results store they share
    took the slot's request id once)."""


class ScheduleHooks(Protocol):
    """What the clock asks of its server."""

    async def start_slot(
        self, name: str, schedule: Schedule, slot: datetime, *, by_store: bool = False
    ) -> str:
        """Start ``name``'s run for ``slot``: its run id; raises with why it cannot
        (:class:`SlotTaken` when another server started it). ``by_store``: the results store
        alone lets it start (its claim went to another server): one that cannot take the
        slot's id refuses it."""
        ...

    def live_runs(self, name: str) -> list[tuple[str, str]]:
        """The runs of ``name`` that live in the fleet, as (source, run id)."""
        ...

    def cancel_run(self, source: str, run_id: str, reason: str) -> None:
        """Cancel ``run_id`` where it runs."""
        ...

    def pause(self, name: str) -> Constraint | None:
        """The pause on ``schedule:<name>`` in force; ``None`` if none."""
        ...

    async def take_slot(self, name: str, slot: datetime, *, by_store: bool = False) -> bool:
        """Take ``name``'s ``slot`` for a skip, as a start takes it (once in a results store
        shared with other servers): whether this server took it (without a shared store, it
        did unless ``by_store``); ``False``: another server took it first, and says what
        became of it."""
        ...

    async def store_decides(self, source: str) -> bool:
        """Whether this server keeps its results in a store ``source`` keeps its own in, so
        that the store decides which of them takes a slot both claimed."""
        ...


def check_schedules(schedules: Mapping[str, Schedule], workflows: Mapping[str, object]) -> None:
    """``ValueError`` for a bad name, a value that is no :class:`Schedule`, or a schedule of a
    workflow not served."""
    check_starters("schedule", Schedule, schedules, workflows)


def check_starters(
    kind: str, made: type[Any], starters: Mapping[str, Any], workflows: Mapping[str, object]
) -> None:
    """``ValueError`` for a bad name, a value that is no ``made`` (``TypeError``), or one that
    starts a workflow not served, of ``starters`` (schedules or triggers, by name: at most
    256), each of which starts its ``workflow`` or its own name's."""
    if len(starters) > _MAX_SCHEDULES:
        raise ValueError(f"serve() takes at most {_MAX_SCHEDULES} {kind}s, not {len(starters)}")
    for name, starter in starters.items():
        check_workflow_name(name)
        if not isinstance(starter, made):
            raise TypeError(f"{kind} {name!r} is {starter!r}, not a {made.__name__}")
        workflow = starter.workflow or name
        if workflow not in workflows:
            raise ValueError(
                f"{kind} {name!r} starts workflow {workflow!r}, which is not served "
                f"(served: {', '.join(workflows)})"
            )


@dataclass
class _State:
    """What the clock knows of one schedule, for the announcement."""

    next: datetime | None = None
    fired: dict[datetime, str] = field(default_factory=dict)  # the latest slots fired here
    skipped: int = 0
    last_skipped: str = ""
    queued: datetime | None = None  # overlap "queue": the slot that waits
    queued_by_store: bool = False  # the slot that waits is the store's to give (see _fire)


class Clock:
    """Fires ``schedules`` through ``hooks``; ``changed`` is called when what the announcement
    says of them changes."""

    def __init__(
        self,
        schedules: Mapping[str, Schedule],
        claims: SlotClaims,
        hooks: ScheduleHooks,
        stats: EngineStats,
        changed: Callable[[], None],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._schedules = dict(schedules)
        self._claims = claims
        self._hooks = hooks
        self._stats = stats
        self._changed = changed
        self._now = now
        self._state = {name: _State() for name in schedules}
        self._tasks: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        """A clock for each schedule (the claims subscribed already)."""
        for name, schedule in self._schedules.items():
            self._spawn(self._tick(name, schedule), f"cascade-schedule-{name}")

    def _spawn(self, work: Coroutine[None, None, object], label: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=label)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop the clocks (a cancel a library's ``wait_for`` dropped is sent again)."""
        await cancel_all(self._tasks)

    def described(self) -> list[ServedSchedule]:
        """Each schedule as the announcement says it, with its state."""
        described = []
        for name, schedule in self._schedules.items():
            state = self._state[name]
            entry = schedule.described(name)
            last = self._claims.last(name)
            entry.next = state.next.isoformat() if state.next else ""
            entry.last = last.isoformat() if last else ""
            if state.fired:
                last_slot = max(state.fired)
                entry.last_slot, entry.last_run = last_slot.isoformat(), state.fired[last_slot]
            if state.next is not None:
                upcoming = [state.next]
                for _ in range(_UPCOMING):
                    upcoming.append(schedule.next_after(upcoming[-1]))
                entry.upcoming = [slot.isoformat() for slot in upcoming[1:]]
            pause = self._hooks.pause(name)
            if pause is not None:
                entry.paused = True
                entry.paused_by = _said(pause.issued_by)
                entry.paused_reason = _said(pause.reason)
                entry.paused_until = pause.expires_at or 0.0
            entry.skipped = state.skipped
            entry.last_skipped = state.last_skipped
            described.append(entry)
        return described

    async def _tick(self, name: str, schedule: Schedule) -> None:
        state = self._state[name]
        now = self._now()
        last = self._claims.last(name)
        if last is not None:
            await self._catch_up(name, schedule, list(schedule.slots(last, now)))
        slot = schedule.next_after(now)
        while True:
            state.next = slot
            self._changed()
            fire_at = slot + timedelta(seconds=schedule.delay(name, slot))
            # the wall clock, looked at again every _MAX_SLEEP s: it may jump (NTP, a VM resumed)
            while (wait := (fire_at - self._now()).total_seconds()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(wait, _MAX_SLEEP))
            try:
                await self._fire(name, schedule, slot)
            except Exception as exc:  # never stops the clock
                _log.warning("schedule %s: slot %s: %s", name, slot.isoformat(), explain(exc))
            now = self._now()
            missed = list(schedule.slots(slot, now))  # slept past some (a machine asleep)
            if missed:
                await self._catch_up(name, schedule, missed)
                slot = missed[-1]
            slot = schedule.next_after(slot)

    async def _catch_up(self, name: str, schedule: Schedule, missed: list[datetime]) -> None:
        """``missed`` slots (oldest first) as the schedule's catchup says: those no server
        claimed are fired or counted missed."""
        missed = [slot for slot in missed if self._claims.claimed(name, slot) is None]
        if not missed:
            return
        fire = {"none": [], "latest": missed[-1:], "all": missed[-CATCHUP_MAX:]}[schedule.catchup]
        left = len(missed) - len(fire)
        if left:
            self._stats.slots_missed += left
            _log.warning(
                "schedule %s: %d slots missed while no server of it ran (%s to %s), not fired "
                "(catchup %r)",
                name,
                left,
                missed[0].isoformat(),
                missed[-1].isoformat(),
                schedule.catchup,
            )
        for slot in fire:
            await self._fire(name, schedule, slot)

    async def _fire(self, name: str, schedule: Schedule, slot: datetime) -> None:
        """Claim ``slot`` and, won, start its run as the overlap says."""
        won, first = await self._claims.claim(name, slot)
        if first is None:
            self._stats.slots_unclaimed += 1
            _log.warning(
                "schedule %s: slot %s not fired here: its claim was not heard back from the "
                "broker within its wait",
                name,
                slot.isoformat(),
            )
            return
        if won:
            self._stats.slots_claimed += 1
            await self.run_slot(name, schedule, slot)
        elif await self._hooks.store_decides(first.source):
            # On a broker that does not order two servers' claims alike for every subscriber,
            # each may hear the other's first, and neither would fire the slot: where they
            # share a results store, its exclusive create gives the slot to one of them.
            await self.run_slot(name, schedule, slot, by_store=True)

    async def run_slot(
        self, name: str, schedule: Schedule, slot: datetime, *, by_store: bool = False
    ) -> str | None:
        """Start the run of ``slot`` (won by this server, or ``by_store``: its claim went to a
        server sharing this one's results store, which takes the slot once between them) as
        the overlap says: its run id, or ``None`` when the slot was skipped or waits."""
        pause = self._hooks.pause(name)
        if pause is not None:
            by, why = _said(pause.issued_by), _said(pause.reason)
            by, why = f" by {by}" if by else "", f": {why}" if why else ""
            if await self._taken_to_skip(name, slot, by_store):
                self._stats.slots_paused += 1
                what = (
                    f"its workflow {split_scope(pause.scope).target[len('workflow:') :]} is"
                    if split_scope(pause.scope).target.startswith("workflow:")
                    else "the schedule is"
                )
                self._skip(name, slot, f"{what} paused{by}{why}", counted=False)
            return None
        live = self._hooks.live_runs(name)
        if live and schedule.overlap == "skip":
            source, run_id = live[0]
            if await self._taken_to_skip(name, slot, by_store):
                self._skip(name, slot, f"its run {run_id} on {source} still lives (overlap skip)")
            return None
        if live and schedule.overlap == "queue":
            state = self._state[name]
            if state.queued is not None:
                if await self._taken_to_skip(name, slot, by_store):
                    why = f"slot {state.queued.isoformat()} waits already (overlap queue)"
                    self._skip(name, slot, why)
                return None
            state.queued, state.queued_by_store = slot, by_store
            _log.info("schedule %s: slot %s waits for %s (overlap queue)", name, slot, live[0][1])
            return None
        if live and schedule.overlap == "cancel":
            for source, run_id in live:
                self._hooks.cancel_run(
                    source, run_id, f"slot {slot.isoformat()} of {name} (overlap cancel)"
                )
        return await self._start(name, schedule, slot, by_store)

    async def _taken_to_skip(self, name: str, slot: datetime, by_store: bool) -> bool:
        """Whether this server skips ``slot`` and says so: two servers that both won its claim
        on a broker that does not order their claims alike skip it once between them, as they
        would start it once (the results store they share takes it once)."""
        if await self._hooks.take_slot(name, slot, by_store=by_store):
            return True
        if by_store:
            return False  # its claim went to another server: nothing was won twice here
        self._stats.slots_deduplicated += 1
        _log.info("schedule %s: slot %s won here too; another server took it", name, slot)
        return False

    async def _start(
        self, name: str, schedule: Schedule, slot: datetime, by_store: bool
    ) -> str | None:
        try:
            run_id = await self._hooks.start_slot(name, schedule, slot, by_store=by_store)
        except SlotTaken as exc:
            if by_store:
                return None  # its claim went to another server, which took it
            self._stats.slots_deduplicated += 1
            _log.info("schedule %s: slot %s won here too; %s", name, slot.isoformat(), exc)
            return None
        except Exception as exc:
            if by_store:  # the slot went to another server, which says what became of it
                _log.info("schedule %s: slot %s not started here: %s", name, slot, exc)
                return None
            self._skip(name, slot, str(exc))
            return None
        self._stats.slots_fired += 1
        self.fired(name, slot, run_id)
        return run_id

    def fired(self, name: str, slot: datetime, run_id: str) -> None:
        """``name``'s ``slot`` started ``run_id`` here (by the clock, or a backfill)."""
        state = self._state[name]
        state.fired[slot] = run_id
        while len(state.fired) > _FIRED_KEPT:
            del state.fired[min(state.fired)]
        _log.info("schedule %s: slot %s started run %s", name, slot.isoformat(), run_id)
        self._changed()

    def runs_changed(self) -> None:
        """A run ended here or a peer's changed: a queued slot whose schedule has no live run
        left starts now."""
        for name, state in self._state.items():
            slot = state.queued
            if slot is not None and not self._hooks.live_runs(name):
                state.queued = None
                work = self._start(name, self._schedules[name], slot, state.queued_by_store)
                self._spawn(work, "cascade-slot")

    def peer_fired(self, source: str, name: str, slot: datetime, run_id: str) -> None:
        """``source`` announced it fired ``name``'s ``slot`` as ``run_id``: if this server
        fired it too, the slot ran twice (counted in ``slots_doubled``, said in a warning)."""
        state = self._state.get(name)
        here = None if state is None else state.fired.get(slot)
        if here is None or here == run_id:
            return
        self._stats.slots_doubled += 1
        _log.warning(
            "schedule %s: slot %s ran twice: here as %s and on %s as %s (the broker did not "
            "order their claims alike; a results store shared by the servers takes each slot "
            "once)",
            name,
            slot.isoformat(),
            here,
            source,
            run_id,
        )

    def _skip(self, name: str, slot: datetime, why: str, *, counted: bool = True) -> None:
        """Say ``slot`` skipped and why (counted in ``slots_skipped`` unless not ``counted``:
        a pause counts in ``slots_paused``)."""
        state = self._state[name]
        state.skipped += 1
        state.last_skipped = f"{slot.isoformat()}: {why}"[:1024]
        if counted:
            self._stats.slots_skipped += 1
        _log.warning("schedule %s: slot %s skipped: %s", name, slot.isoformat(), why)
        self._changed()
