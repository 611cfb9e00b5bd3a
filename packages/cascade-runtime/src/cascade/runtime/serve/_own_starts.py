"""The starts a server makes itself: a schedule's slot, a trigger's event, the carry-on of a
run whose server died. Each is a start request whose id names what it starts (a slot, an event,
a lost run's generation), taken as a broker's request is (:class:`Admission`): once here, and
once in a results store shared with other servers, so that across the fleet one server starts
it."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cascade.interfaces.serving import StartReply, StartRequest
from cascade.interfaces.wire import slot_request_id, trigger_request_id

from .._steps import describe
from ._admission import ERROR_CHARS, Admission, _Refused, _Taken
from ._carry_on import LostRun, carry_request_id
from ._schedule import Schedule
from ._scheduler import SlotTaken
from ._serve_requests import Answers
from ._served_runs import Accepted
from ._trigger import Fired, Trigger

__all__ = ["OwnStarts"]


class OwnStarts:
    """The starts server ``source`` makes itself, taken through its ``admission``, answered in
    its ``answers`` (a broker's request of the same id is then answered as this one was), and
    given to ``launch`` once accepted."""

    def __init__(
        self,
        source: str,
        admission: Admission,
        answers: Answers,
        launch: Callable[[Accepted], None],
    ) -> None:
        self._source = source
        self._admission = admission
        self._answers = answers
        self._launch = launch

    async def trigger(
        self,
        name: str,
        trigger: Trigger,
        params: dict[str, Any],
        fired: Fired,
        key: str,
        *,
        by_store: bool,
    ) -> str:
        """Start trigger ``name``'s run for its event ``key`` in the place held, as a start
        request whose id names the event would (taken once here, and once in a results store
        shared with other servers): its run id; raises why not."""
        request = StartRequest(
            id=trigger_request_id(name, key),
            workflow=trigger.workflow or name,
            params=params,
            issued_by=self._source,
            reason=f"trigger {name}: {fired.event}"[:1024],
            issued_at=time.time(),
        )
        return await self._start(request, SlotTaken, held=True, by_store=by_store, fired=fired)

    async def slot(
        self, name: str, schedule: Schedule, slot: datetime, *, by_store: bool = False
    ) -> str:
        """Start ``name``'s run for ``slot`` as a start request naming the slot would (its id
        taken once here, and once in a results store shared with other servers): its run id;
        raises with why not."""
        request = StartRequest(
            id=slot_request_id(name, slot),
            workflow=schedule.workflow or name,
            params=dict(schedule.params),
            issued_by=self._source,
            reason=f"schedule {name}",
            issued_at=time.time(),
        )
        return await self._start(request, _Refused, slot=(name, slot), by_store=by_store)

    async def _start(self, request: StartRequest, seen: type[Exception], **take: Any) -> str:
        """Start ``request``, one this server made itself (a slot's, a trigger's event's), its
        id taken once here (``seen`` raised for one taken already) and once in a results store
        shared with other servers (:class:`SlotTaken` when another took it): its run id;
        raises with why not. ``take``: :meth:`Admission.take`'s options."""
        if self._answers.seen(request.id) is not False:
            raise seen(f"request {request.id} was taken already")
        accepted: Accepted | None = None
        reply: StartReply | None = None
        try:
            reply, accepted = await self._admission.take(request, **take)
        except _Taken as exc:
            reply = self._admission.reply(request, "refused", error=str(exc)[:ERROR_CHARS])
            raise SlotTaken(str(exc)) from None
        except Exception as exc:
            reply = self._admission.reply(request, "refused", error=describe(exc)[:ERROR_CHARS])
            raise
        finally:
            if reply is not None:
                self._answers.answered(reply)
            else:  # serving stopped while it was taken: its cancel goes on, unanswered
                self._answers.forget(request.id)
        assert accepted is not None
        self._launch(accepted)
        return accepted.run_id

    async def carry(self, lost: LostRun) -> str:
        """Carry on ``lost`` here: a rerun of it from its failure (what it kept reused), with
        its params and origin, its start claimed once across the servers (as a request whose
        id names it); its run id, or raises why not."""
        origin = lost.origin
        request = StartRequest(
            id=carry_request_id(lost.run_id, lost.generation),
            workflow=lost.workflow,
            rerun_of=lost.run_id,
            issued_by=origin.issued_by,
            reason=origin.reason,
            issued_at=origin.issued_at,
        )
        slot = None
        if origin.schedule is not None and origin.scheduled_for is not None:
            with contextlib.suppress(ValueError):
                slot = (origin.schedule, datetime.fromisoformat(origin.scheduled_for))
        _, accepted = await self._admission.take(request, slot, carried=lost)
        assert accepted is not None
        self._answers.answered(self._admission.reply(request, "started", run_id=accepted.run_id))
        self._launch(accepted)
        return accepted.run_id

    async def take_slot(self, name: str, slot: datetime, *, by_store: bool = False) -> bool:
        """Take ``name``'s ``slot`` for a skip, as a start takes it: whether this server took
        it (:meth:`ScheduleHooks.take_slot`)."""
        request = StartRequest(id=slot_request_id(name, slot), workflow=name)
        try:  # kept, as a started slot's is
            await self._admission.claim(request, None, uuid.uuid4().hex, by_store=by_store)
        except _Taken:
            return False
        return True
