"""Hidden means unknown: the one rule every endpoint of a team's dashboard follows for a run
its asker may not see (another org's or project's).

Such a run is answered exactly as a run nobody ever heard of: the same status, the same body,
at the same cost. Live runs are filtered in memory (:func:`seen_live`); recorded ones in the
history's own query (``among=``: the query that would find the run finds nothing), so no
branch does work only for a hidden run. A prefix names only the runs the asker may see: a
prefix only hidden runs have names none, and an ambiguous one lists visible runs only.
``/api/state``, ``/api/stream``, ``/api/history/...`` and ``/api/runs/{id}/cancel`` all go
through here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from starlette.responses import JSONResponse

from cascade.control.run_ids import Recorded, checked_prefix, is_full, one_run
from cascade.interfaces import CascadeError

from .._guard import refusal
from ._listing import covers

if TYPE_CHECKING:
    from cascade.control.access import Among
    from cascade.history import History, RunSummary
    from cascade.reader import RunView

    from ._fleet_index import FleetRun
    from ._model import DashboardModel

__all__ = [
    "NO_SUCH_RUN",
    "FoundRun",
    "HistoryUnreadable",
    "find_run",
    "recorded_run",
    "seen_live",
    "unknown_run",
    "visible_id",
]

_T = TypeVar("_T")

NO_SUCH_RUN = "no such run in the history"
"""What ``/api/history/...`` says of a run it has not recorded, or the asker may not see."""


def seen_live(model: DashboardModel, run_id: str, among: Among | None) -> RunView | FleetRun | None:
    """The live run ``run_id`` (a whole id) when the asker (``among``: what they may see,
    ``None``: everything) may see it, else ``None``, as for a run never heard of."""
    run = model.open_run(run_id)
    return run if run is not None and covers(among, run) else None


def visible_id(model: DashboardModel, run_id: str | None, among: Among | None) -> str | None:
    """``run_id`` (a page's open run) when the asker may see it, else ``None`` (as if unknown);
    for those who see everything, ``run_id`` as given."""
    if run_id is None or among is None:
        return run_id
    return run_id if seen_live(model, run_id, among) is not None else None


class HistoryUnreadable(CascadeError):
    """The history could not answer (its one line): a 503."""


async def _read(history: History, job: Callable[[History], _T]) -> _T:
    """``job(history)`` in a worker thread (the history extra may be missing: imported here)."""
    from cascade.history import HistoryError

    try:
        return await asyncio.to_thread(job, history)
    except HistoryError as exc:
        raise HistoryUnreadable(str(exc)) from None


@dataclass(frozen=True)
class FoundRun:
    """The run a control names: its whole id, its org and project (``None``: not known here,
    a whole id nobody heard of, for someone who sees everything), and the source the
    history recorded it from (``None``: not recorded)."""

    run_id: str
    org_id: str | None = None
    project_id: str | None = None
    owner: str | None = None


async def find_run(
    model: DashboardModel, history: History | None, given: str, among: Among | None
) -> FoundRun | None:
    """The one run ``given`` (a whole id or a prefix) names among the live and recorded runs
    the asker may see; ``None`` when none does (never heard of, or hidden: the same queries
    either way). A whole id nobody heard of is taken as it is for those who see everything
    (``among`` ``None``: its engine may still answer). :class:`ControlError` when ``given`` is
    not hex or several runs the asker may see have it (it names those only);
    :class:`HistoryUnreadable` when the history cannot answer."""
    wanted = checked_prefix(given)
    # one query, whole id or prefix, hidden or unknown: its cost tells nothing
    recorded = Recorded()
    if history is not None:
        from cascade.history import recorded_in

        recorded = await _read(history, lambda h: recorded_in(h, wanted, among))
    live = (
        [
            run_id
            for runs in (model.state.runs, model.fleet.runs)
            for run_id, run in runs.items()
            if run_id.startswith(wanted) and covers(among, run)
        ]
        if not is_full(wanted)
        else [wanted]
        if seen_live(model, wanted, among) is not None
        else []
    )
    found = one_run(wanted, live, recorded.ids, more=recorded.capped)
    if found is None:
        return FoundRun(wanted) if is_full(wanted) and among is None else None
    heard = model.open_run(found)
    org_id, project_id = (heard.org_id, heard.project_id) if heard is not None else (None, None)
    owner = None
    if history is not None and found in recorded.ids:
        detail = await _read(history, lambda h: _recorded(h, found))
        if detail is not None:
            owner = detail.source
            org_id, project_id = org_id or detail.org_id, project_id or detail.project_id
    return FoundRun(found, org_id, project_id, owner)


async def recorded_run(history: History | None, run_id: str) -> RunSummary | None:
    """What the history recorded of the run ``run_id`` (a whole id; ``None``: not recorded,
    or no history); :class:`HistoryUnreadable` when the history cannot answer."""
    if history is None:
        return None
    return await _read(history, lambda h: _recorded(h, run_id))


def _recorded(history: History, run_id: str) -> RunSummary | None:
    detail = history.run(run_id, limit=1, counts=False)
    return detail.run if detail is not None and detail.run.run_id == run_id else None


def unknown_run(given: str, team: bool) -> JSONResponse:
    """The 404 of a control on a run nobody heard of, or (``team``) the asker may not see:
    the same for both, naming nothing but what was asked."""
    where = (
        "the runs you may see" if team else ("the runs this dashboard has heard or in its history")
    )
    return refusal(404, f"no run's id starts with {given.strip().lower()} among {where}")
