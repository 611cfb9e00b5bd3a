"""Runs whose engine died: lost when the broker says their engine went offline, carried on
when another server says it carries them on, and back if their engine goes on after all.

A run is lost when its engine's ``offline`` status (its will, or a shutdown) comes while the
run has not ended: the broker's word, not a guess from silence. A lost run is over for every
view (:attr:`RunView.finished`): it leaves the live lists, its held tasks leave the list to
decide, its clock stops. A server that carries it on starts a run whose ``origin`` names it
(``carried_on_from``) and its engine (``lost_engine``); the lost run then says where it went
(:attr:`RunView.carried_on_as`, :attr:`RunView.carried_on_by`). A view that joined after the
death knows the lost run from its carry-on alone, when the broker still holds its engine's
``offline`` status.

Whoever may publish can claim a carry-on, so a claim is taken only for a run of the same org
and project as the run that claims it, of the engine the claim names, and only once that
engine is offline here; a claim heard before the death it follows is kept (bounded) until the
death comes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cascade.interfaces.summaries import SummaryRun

from ._fleet import carried_on, carries, counted_summary
from ._timestamps import parse_timestamp
from ._views import EngineView, RunView

__all__ = ["MAX_PENDING_CARRY_ONS", "CarryOn", "LostRun", "LostRuns", "lost_run"]

MAX_PENDING_CARRY_ONS = 4096
"""Carry-ons a view keeps while the death they follow has not reached it (the oldest go)."""


@dataclass(frozen=True, slots=True)
class CarryOn:
    """A run that says it carries on another: its id, its server, and its place."""

    run_id: str
    by: str
    org_id: str
    project_id: str
    lost_engine: str | None

    def fits(self, lost: RunView) -> bool:
        """Whether this carry-on may be of ``lost``: the same org and project, and the engine
        it names (when it names one) is the lost run's."""
        return (
            lost.org_id == self.org_id
            and lost.project_id == self.project_id
            and (self.lost_engine is None or self.lost_engine == lost.source)
        )


@dataclass
class LostRuns:
    """The deaths a reader model folds: which runs they lost, and where those went on.

    ``runs`` and ``engines`` are the model's own; ``over`` is called with a run that is now
    over (lost) and ``back`` with one that goes on again, so that the model keeps its
    finished runs in order; ``changed`` (calling the model's :attr:`~ReaderModel.run_watchers`)
    with every run changed by something other than its own events.
    """

    runs: dict[str, RunView]
    engines: dict[str, EngineView]
    over: Callable[[RunView], None]
    back: Callable[[RunView], None]
    changed: Callable[[RunView], None]
    pending: dict[str, CarryOn] = field(default_factory=dict)
    """Carry-ons heard of runs not lost here (yet), by the run they name."""
    refused: int = 0
    """Carry-on claims refused: of a run of another place or another engine."""

    def engine_died(self, engine: EngineView, live: set[str], now: float) -> None:
        """``engine`` went offline (the broker's word) while these of its runs had not ended:
        each is lost now."""
        for run_id in live:
            run = self.runs.get(run_id)
            if run is not None and not run.finished and run.source == engine.source:
                self._lose(run, now)

    def _lose(self, run: RunView, now: float) -> None:
        run.status = "Lost"
        run.lost_at = now
        run.finish(now)
        self.over(run)
        claim = self.pending.pop(run.run_id, None)
        if claim is not None and claim.fits(run):
            run.carried_on_as, run.carried_on_by = claim.run_id, claim.by
        self.changed(run)

    def goes_on(self, run: RunView) -> None:
        """A new event of lost ``run`` from its engine, back online: it was not lost."""
        run.status = "Running"
        run.lost_at = run.finished_at = None
        run.carried_on_as = run.carried_on_by = None
        self.back(run)
        self.changed(run)

    def carried(self, run: RunView, now: float) -> None:
        """``run``'s origin says it carries on another run: that run says where it went, if
        the claim fits it (see the module's doc)."""
        origin = run.origin
        lost_id = origin.carried_on_from if origin is not None else None
        if origin is None or lost_id is None or lost_id == run.run_id:
            return
        claim = CarryOn(run.run_id, run.source, run.org_id, run.project_id, origin.lost_engine)
        lost = self.runs.get(lost_id)
        if lost is None:
            engine = self.engines.get(origin.lost_engine) if origin.lost_engine else None
            if engine is None or engine.online:
                self._keep(lost_id, claim)
                return
            # joined after the death: the broker still says its engine is offline
            lost = RunView(lost_id, run.org_id, run.project_id, engine.source)
            lost.name = run.name
            self.runs[lost_id] = lost
            self._lose(lost, engine.wills[-1] if engine.wills else now)
        if not claim.fits(lost):
            self.refused += 1
        elif not lost.lost:
            self._keep(lost_id, claim)
        elif lost.carried_on_as != run.run_id:
            lost.carried_on_as, lost.carried_on_by = run.run_id, run.source
            self.changed(lost)

    def _keep(self, lost_id: str, claim: CarryOn) -> None:
        self.pending.pop(lost_id, None)
        self.pending[lost_id] = claim
        if len(self.pending) > MAX_PENDING_CARRY_ONS:
            del self.pending[next(iter(self.pending))]


@dataclass(frozen=True, slots=True)
class LostRun:
    """What a view knows of a lost run: its id, the engine that died with it (``engine``,
    its source), when (``lost_at``, epoch seconds; ``None``: not known, as for a death this
    view heard only as a retained will), and the run and server that carry it on
    (``carried_on_as``, ``carried_on_by``; ``None`` while none is known)."""

    run_id: str
    engine: str
    lost_at: float | None = None
    carried_on_as: str | None = None
    carried_on_by: str | None = None


class Knowing(Protocol):
    """What :func:`lost_run` reads of a view: its runs and its engines (a
    :class:`~cascade.reader.ReaderModel` is one)."""

    @property
    def runs(self) -> Mapping[str, RunView]: ...

    @property
    def engines(self) -> Mapping[str, EngineView]: ...


def lost_run(model: Knowing, run_id: str) -> LostRun | None:
    """Whether ``model`` knows run ``run_id`` lost, and what it knows of it: from the run's
    own view (:attr:`RunView.lost`), else from the engines' statuses and summaries alone (an
    offline engine whose last summary lists the run live; what `cascade status` reads).
    Either way, a run another summary of the run's org and project lists as carrying it on
    (``carried_on_from``) says where it went. ``None``: not lost, as far as ``model`` knows
    (its engine online, its end heard, or the run unknown)."""
    carried = carried_on(model.engines.values())
    run = model.runs.get(run_id)
    if run is not None:
        if not run.lost:
            return None
        lost = LostRun(run_id, run.source, run.lost_at, run.carried_on_as, run.carried_on_by)
        by = carries(carried, run) if lost.carried_on_as is None else None
        if by is not None:
            return LostRun(run_id, run.source, run.lost_at, by[1].run_id, by[0])
        return lost
    for engine in model.engines.values():
        listed = _listed_live(engine, run_id)
        if listed is None or engine.online:
            continue
        by = carries(carried, listed)
        when = _died_at(engine)
        if by is None:
            return LostRun(run_id, engine.source, when)
        return LostRun(run_id, engine.source, when, by[1].run_id, by[0])
    return None


def _listed_live(engine: EngineView, run_id: str) -> SummaryRun | None:
    summary = counted_summary(engine)
    if summary is None:
        return None
    return next((r for r in summary.listed if r.run_id == run_id and r.status == "Running"), None)


def _died_at(engine: EngineView) -> float | None:
    """When ``engine`` went offline, as far as this view can tell: the will it heard live,
    or the stamp of a shutdown's offline (a will's stamp is when its connection was made)."""
    if engine.wills:
        return engine.wills[-1]
    status = engine.status
    if status is not None and status.reason is not None:
        return parse_timestamp(status.ts)
    return None
