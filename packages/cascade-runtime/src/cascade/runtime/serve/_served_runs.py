"""The runs a serving engine accepted: at most ``max_runs`` running, at most ``max_queued``
waiting for a slot, each run to its end by the engine."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cascade.interfaces.wire import ServedRun

from .._errors import RunCancelledError
from .._events import Event, RunStarted
from .._run_life import RunRequest
from .._steps import explain

__all__ = ["Accepted", "ServedRuns"]

_log = logging.getLogger("cascade.runtime.serve")

Cancel = Callable[[str], object]  # Engine.cancel of a run id: None when it runs no such run


@dataclass(slots=True, eq=False)
class Accepted:
    """A run a request started (``request``: the run asked of the engine, its graph built
    once for it): it runs, or waits in the queue for a slot."""

    request: RunRequest
    workflow: str
    schedule: str | None = None  # the schedule whose slot it runs
    task: asyncio.Task[None] | None = field(default=None)
    started: bool = False  # its RunStarted is out: once the engine no longer runs it, it closes

    @property
    def run_id(self) -> str:
        return self.request.run_id

    @property
    def rerun_of(self) -> str | None:
        return self.request.rerun_of


class ServedRuns:
    """The accepted runs, each run by ``run`` (the engine's ``_run_target``); ``changed`` is
    called whenever one is queued, starts or ends (the announcement's figures); ``cancel``
    (the engine's, of a run id, for a reason) stops a run asked to stop before the engine
    began it, once it has (:meth:`cancel_at_start`)."""

    def __init__(
        self,
        run: Callable[[RunRequest], Awaitable[Any]],
        *,
        max_runs: int,
        max_queued: int,
        changed: Callable[[], None],
        cancel: Callable[[str, str], object] = lambda *_: None,
    ) -> None:
        if max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, not {max_runs}")
        if max_queued < 0:
            raise ValueError(f"max_queued must be >= 0, not {max_queued}")
        self.max_runs = max_runs
        self.max_queued = max_queued
        self.running: dict[str, Accepted] = {}
        self.queue: deque[Accepted] = deque()
        self._run_target = run
        self._changed = changed
        self._held = 0  # places held for runs about to be accepted
        self._cancel = cancel
        self._cancel_at_start: dict[str, str] = {}  # run id -> why, once the engine began it

    def cancel_at_start(self, run_id: str, reason: str) -> bool:
        """Whether ``run_id`` has a slot but the engine has not begun it yet (planning it,
        reading what a rerun reuses): it is cancelled for ``reason`` as soon as it has."""
        entry = self.running.get(run_id)
        if entry is None or entry.started:
            return False
        self._cancel_at_start[run_id] = reason
        return True

    def busy(self) -> str | None:
        """Why no run can be accepted now (``max_runs`` run and ``max_queued`` wait, places
        held counted), or ``None``."""
        running, queued, held = len(self.running), len(self.queue), self._held
        if running + queued + held >= self.max_runs + self.max_queued:
            holding = f" and {held} being taken" if held else ""
            return (
                f"busy: {running} runs running and {queued} queued{holding} "
                f"(max_runs {self.max_runs}, max_queued {self.max_queued})"
            )
        return None

    def hold(self) -> str | None:
        """Hold a place for a run about to be accepted (while what decides it is awaited):
        why there is none (:meth:`busy`), or ``None``, held until :meth:`accept` takes it
        (``held=True``) or :meth:`unhold` gives it back."""
        busy = self.busy()
        if busy is None:
            self._held += 1
        return busy

    def unhold(self) -> None:
        """Give back a place :meth:`hold` held, its run not accepted."""
        self._held -= 1

    def scheduled(self, schedule: str) -> list[Accepted]:
        """The accepted runs of ``schedule``'s slots, running or queued."""
        return [e for e in (*self.running.values(), *self.queue) if e.schedule == schedule]

    def drop_queued(self, run_id: str) -> None:
        """Take the queued run ``run_id`` out of the queue: it never starts."""
        for entry in list(self.queue):
            if entry.run_id == run_id:
                self.queue.remove(entry)
                self._changed()

    def rerunning(self, rerun_of: str) -> Accepted | None:
        """The accepted run that reruns ``rerun_of``, running or queued, if any."""
        for entry in (*self.running.values(), *self.queue):
            if entry.rerun_of == rerun_of:
                return entry
        return None

    def accept(self, accepted: Accepted, *, held: bool = False) -> bool:
        """Take ``accepted`` (there is room: :meth:`busy` said so, or a place is ``held`` for
        it): a slot of its own, or the queue's end; whether it is queued. :meth:`launch`
        starts it once it is answered."""
        if held:
            self._held -= 1
        queued = len(self.running) >= self.max_runs
        if queued:
            self.queue.append(accepted)
        else:
            self.running[accepted.run_id] = accepted
        self._changed()
        return queued

    def launch(self, accepted: Accepted) -> None:
        """Start ``accepted`` when it holds a slot (a queued one starts when a slot frees)."""
        if accepted.task is None and self.running.get(accepted.run_id) is accepted:
            accepted.task = asyncio.create_task(self._run(accepted), name="cascade-served-run")

    def live(self, at_most: int) -> list[ServedRun]:
        """The runs running, then those queued, as the announcement lists them (a queued
        rerun too, so that no other server takes a rerun of the same run meanwhile)."""
        return [
            ServedRun(
                run_id=e.run_id, workflow=e.workflow, rerun_of=e.rerun_of, schedule=e.schedule
            )
            for e in [*self.running.values(), *self.queue][:at_most]
        ]

    def on_event(self, event: Event) -> None:
        """The engine's events: a run that has started closes itself once cancelled or ended
        (:meth:`stop` never interrupts that)."""
        if isinstance(event, RunStarted):
            entry = self.running.get(event.run_id)
            if entry is not None:
                entry.started = True
                reason = self._cancel_at_start.pop(event.run_id, None)
                if reason is not None:
                    self._cancel(event.run_id, reason)

    async def _run(self, accepted: Accepted) -> None:
        try:
            await self._run_target(accepted.request)
        except asyncio.CancelledError:
            raise
        except RunCancelledError as exc:
            _log.info("run %s of %s: %s", accepted.run_id, accepted.workflow, exc)
        except Exception as exc:
            _log.info("run %s of %s ended: %s", accepted.run_id, accepted.workflow, explain(exc))
        finally:
            self.running.pop(accepted.run_id, None)
            self._cancel_at_start.pop(accepted.run_id, None)
            while self.queue and len(self.running) < self.max_runs:
                entry = self.queue.popleft()
                self.running[entry.run_id] = entry
                self.launch(entry)
            self._changed()

    async def stop(self, cancel: Callable[[str], object]) -> None:
        """Drop the queue (its runs never start), cancel the runs running (through
        ``cancel``, the engine's, so that each closes as a cancelled run does; one not
        registered yet by its task) and wait for them."""
        if self.queue:
            _log.warning(
                "serving stopped: %d queued runs never started (%s)",
                len(self.queue),
                ", ".join(entry.run_id for entry in self.queue),
            )
            self.queue.clear()
        runs = [e for e in self.running.values() if e.task is not None]
        for entry in runs:
            # a started run the engine no longer runs is closing (its last log lines, its
            # telemetry, its summary, each bounded by shutdown_timeout): let it finish, or its
            # telemetry's sender would be left behind
            if cancel(entry.run_id) is None and not entry.started:
                assert entry.task is not None
                entry.task.cancel()  # not started yet: nothing of it to close
        await asyncio.gather(*(e.task for e in runs if e.task is not None), return_exceptions=True)
