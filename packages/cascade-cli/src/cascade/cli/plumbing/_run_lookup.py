"""Run ids looked up in the history for a command: which runs a prefix may name, and which
engine a run was recorded from (:mod:`cascade.control` resolves them with the live ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cascade.control.run_ids import Recorded, find_run, live_wait
from cascade.interfaces import Connector, encode_level, status_filter, status_topic
from cascade.interfaces.wire import placed_summary_topic
from cascade.reader import Place, ReaderModel, subscribe_statuses

from ._context import fail

if TYPE_CHECKING:
    from cascade.history import History

__all__ = [
    "WHERE_FULL_IDS",
    "lost_view",
    "no_run_named",
    "recorded_run",
    "recorded_run_ids",
    "run_named",
]

WHERE_FULL_IDS = "`cascade runs`, `cascade watch --json` and `cascade run PREFIX` show run ids"


def recorded_run_ids(db: str | None, prefix: str) -> Recorded:
    """The ids of the runs in the history ``db`` (the default one when ``None``) that start
    with ``prefix``.

    No history is no answer, not an error: the default database when its file does not
    exist, or the history extra when it is not installed. A database is never created nor
    migrated for this; one that was named (``--db``) and cannot be read ends the command
    (exit 1).
    """
    try:
        from cascade.history import (
            History,
            HistoryError,
            LocationError,
            default_path,
            recorded_in,
        )
    except ImportError:
        return Recorded()
    if db is None and not default_path().exists():
        return Recorded()
    try:
        with History(db) as history:  # read-only: nothing created nor migrated
            return recorded_in(history, prefix)
    except LocationError:  # a malformed URL: the command line's mistake, as it is
        raise
    except HistoryError as exc:
        raise HistoryError(f"cannot look run id {prefix} up: {exc}") from None


async def run_named(
    connector: Connector,
    wanted: str,
    recorded: Recorded,
    timeout: float,
    place: Place | None = None,
) -> str | None:
    """The whole id of the one run ``wanted`` (from ``checked_prefix``) names: itself when
    whole, else the one run the engines' summaries list or ``recorded`` holds (from
    :func:`recorded_run_ids`) whose id starts with it, at once; only when these name none,
    the one heard live within :func:`~cascade.control.live_wait` (at most ``timeout``),
    saying so on stderr (:func:`~cascade.control.run_ids.find_run`). ``None`` when none does
    (say it with :func:`no_run_named`), and :class:`~cascade.control.ControlError` naming
    them when several do (a usage error). With a ``place`` (``--org``, ``--project``), among
    its runs only: what a login over less than ``global`` may read."""

    def waiting(wait: float) -> None:
        typer.echo(
            f"cascade: listening {wait:g} s for live runs whose ids start with {wanted} (the "
            "engines' summaries and the history do not settle it)",
            err=True,
        )

    return await find_run(
        connector,
        wanted,
        recorded.ids,
        more=recorded.capped,
        wait=live_wait(timeout),
        waiting=waiting,
        place=place,
    )


def no_run_named(wanted: str, recorded: Recorded, timeout: float) -> typer.Exit:
    """Exit 1: no run live or recorded has an id that starts with ``wanted`` (as
    :func:`run_named` looked)."""
    searched = f"in the history at {recorded.location} or " if recorded.location else ""
    return fail(
        f"no run's id starts with {wanted} {searched}among the runs heard within "
        f"{live_wait(timeout):g} s; {WHERE_FULL_IDS}"
    )


def recorded_run(db: str | None, run_id: str) -> tuple[str, str, str] | None:
    """The source the history ``db`` (the default one when ``None``) recorded ``run_id``
    from, and the run's org and project; ``None`` when it has not recorded the run, or there is no
    history.

    As :func:`recorded_run_ids`: the default database when its file
    does not exist, or the history extra when it is not installed, is no history; nothing is
    created nor migrated; one named (``--db``) that cannot be read ends the command (exit 1).
    """
    try:
        from cascade.history import History, HistoryError, LocationError, default_path
    except ImportError:
        return None
    if db is None and not default_path().exists():
        return None
    try:
        with History(db) as history:  # read-only: nothing created nor migrated
            return _run_in(history, run_id)
    except LocationError:  # a malformed URL: the command line's mistake, as it is
        raise
    except HistoryError as exc:
        raise HistoryError(f"cannot look up which engine runs {run_id}: {exc}") from None


def _run_in(history: History, run_id: str) -> tuple[str, str, str] | None:
    try:
        detail = history.run(run_id, limit=1, counts=False)
    except ValueError:  # several longer ids start with it: none of them is this run
        return None
    if detail is None or detail.run.run_id != run_id:
        return None
    return detail.run.source, detail.run.org_id, detail.run.project_id


async def lost_view(
    connector: Connector, owner: str | None, org: str | None, project: str | None
) -> ReaderModel:
    """What tells a command at once that a run is lost, and where it went: a reader of the
    run's engine's status and summary (``owner``: exact topics, which every broker sends
    retained) and of the statuses and summaries of the run's org and project (where a carry-on
    lists the run it carries on); without its engine or place, every status and the summaries
    of the org and project known (every one's when neither is). Read
    as it comes (no roll call waited for): a controller given it refuses a decision on a run
    it knows lost (:class:`~cascade.control.RunLostError`)."""
    prefix = connector.topic_prefix
    view = ReaderModel(prefix=prefix, keep_runs=None, keep_for=None)
    if owner is None or org is None or project is None:
        await subscribe_statuses(connector, view.apply, place=Place(org, project))
        return view
    place = f"{prefix}/summary/{encode_level(org)}/{encode_level(project)}/+"
    await connector.subscribe(status_topic(owner, prefix), view.apply)
    await connector.subscribe(placed_summary_topic(owner, org, project, prefix), view.apply)
    await connector.subscribe(status_filter(prefix), view.apply)
    await connector.subscribe(place, view.apply)
    return view
