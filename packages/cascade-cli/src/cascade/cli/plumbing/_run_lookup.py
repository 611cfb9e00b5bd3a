"""Run ids looked up in the history for a command: which runs a prefix may name, and which
engine a run was recorded from (:mod:`cascade.control` resolves them with the live ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cascade.control import Recorded, recorded_in

from ._context import fail

if TYPE_CHECKING:
    from cascade.history import History

__all__ = ["WHERE_FULL_IDS", "recorded_run", "recorded_run_ids"]

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
        from cascade.history import History, HistoryError, LocationError, default_path
    except ImportError:
        return Recorded()
    if db is None and not default_path().exists():
        return Recorded()
    try:
        with History(db) as history:  # read-only: nothing created nor migrated
            return recorded_in(history, prefix)
    except LocationError as exc:  # a malformed URL: the command line's mistake
        raise typer.BadParameter(str(exc), param_hint="'--db'") from None
    except HistoryError as exc:
        raise fail(f"cannot look run id {prefix} up: {exc}") from None


def recorded_run(db: str | None, run_id: str) -> tuple[str, str] | None:
    """The source the history ``db`` (the default one when ``None``) recorded ``run_id``
    from, and the run's org; ``None`` when it has not recorded the run, or there is no
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
    except LocationError as exc:  # a malformed URL: the command line's mistake
        raise typer.BadParameter(str(exc), param_hint="'--db'") from None
    except HistoryError as exc:
        raise fail(f"cannot look up which engine runs {run_id}: {exc}") from None


def _run_in(history: History, run_id: str) -> tuple[str, str] | None:
    try:
        detail = history.run(run_id, limit=1, counts=False)
    except ValueError:  # several longer ids start with it: none of them is this run
        return None
    if detail is None or detail.run.run_id != run_id:
        return None
    return detail.run.source, detail.run.org_id
