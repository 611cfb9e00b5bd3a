"""Which run a `cascade rerun RUN` names and the workflow it ran: from the history, when there
is one and it knows; else from the broker, where the engines' summaries list the run under its
name and the process that ran it serves a workflow of that name (the one place that looks, so
that what it reads can change)."""

from __future__ import annotations

from dataclasses import dataclass

from cascade.control import Controller
from cascade.control.run_ids import is_full, listed_runs, one_run
from cascade.interfaces import Connector
from cascade.reader import Place

from ...plumbing._run_lookup import recorded_run_ids

__all__ = ["RunToRerun", "run_to_rerun", "served_run"]


@dataclass(frozen=True)
class RunToRerun:
    """The run as the request names it (its whole id when the history has it, else the
    prefix given: the serving process resolves it) and its workflow (``None``: not known);
    ``source``: the serving process that ran it, where the broker told (its manifest and
    results are there)."""

    run_id: str
    workflow: str | None
    source: str | None = None


def run_to_rerun(db: str | None, prefix: str) -> RunToRerun:
    """``prefix`` (checked) resolved among the history's runs (``ControlError`` naming them
    when several have it), with the workflow its row says it ran (a run a serving process
    started records it), if any."""
    recorded = recorded_run_ids(db, prefix)
    found = prefix if is_full(prefix) else one_run(prefix, recorded.ids, more=recorded.capped)
    if found is None:
        return RunToRerun(prefix, None)
    return RunToRerun(found, _recorded_workflow(db, found))


def _recorded_workflow(db: str | None, run_id: str) -> str | None:
    """The workflow the history recorded ``run_id`` ran (``None``: no history, no such run,
    or a history from before workflows were recorded)."""
    try:
        from cascade.history import History, HistoryError, default_path
    except ImportError:
        return None
    if db is None and not default_path().exists():
        return None
    try:
        with History(db) as history:  # read-only: nothing created nor migrated
            detail = history.run(run_id, limit=1, counts=False)
    except (HistoryError, ValueError):
        return None
    if detail is None or detail.run.run_id != run_id:
        return None
    return detail.run.workflow or None


async def served_run(
    connector: Connector, prefix: str, timeout: float, place: Place | None = None
) -> RunToRerun | None:
    """The run ``prefix`` names as the engines' retained summaries list it (those of
    ``place`` only, if given: what a login over less than ``global`` may read), with the
    workflow the process that ran it serves under the run's name (a served run is named after
    its workflow) and that process's source; ``None`` when no summary lists it or its process
    serves no such workflow (``ControlError`` naming them when several runs have it)."""
    listed = await listed_runs(connector, place)
    found = one_run(prefix, listed.ids(prefix))
    if found is None:
        return None
    source, run = next((s, r) for s, r in listed.runs if r.run_id == found)
    if run.name is None:
        return None
    for server in await Controller(connector, timeout=timeout).served():
        if server.source == source and server.workflow(run.name) is not None:
            return RunToRerun(found, run.name, source)
    return None
