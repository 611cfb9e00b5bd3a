"""Which engine a run belongs to: the source the history recorded it from, or the first one
its live telemetry is heard from (the rule every reader follows, :class:`ReaderModel`).

A command's answer counts only from the run's owner (`cancel`): whoever can publish can
answer, so "an engine answered" proves nothing unless the engine is the run's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from cascade.interfaces import DEFAULT_PREFIX, Message
from cascade.interfaces.reader import ReaderModel

from ._context import fail

if TYPE_CHECKING:
    from cascade.history import History

__all__ = ["HeardOwner", "owner_in", "recorded_owner", "recorded_run"]


def recorded_owner(db: str | None, run_id: str) -> str | None:
    """The source the history ``db`` (the default one when ``None``) recorded ``run_id``
    from; ``None`` when it has not recorded the run, or there is no history
    (:func:`recorded_run`)."""
    recorded = recorded_run(db, run_id)
    return recorded[0] if recorded is not None else None


def recorded_run(db: str | None, run_id: str) -> tuple[str, str] | None:
    """The source the history ``db`` (the default one when ``None``) recorded ``run_id``
    from, and the run's org; ``None`` when it has not recorded the run, or there is no
    history.

    As :func:`~cascade.cli._run_ids.recorded_run_ids`: the default database when its file
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


def owner_in(history: History, run_id: str) -> str | None:
    """The source ``history`` recorded the run ``run_id`` (a whole id) from, ``None`` when it
    has not recorded it (blocks: a query)."""
    recorded = _run_in(history, run_id)
    return recorded[0] if recorded is not None else None


def _run_in(history: History, run_id: str) -> tuple[str, str] | None:
    try:
        detail = history.run(run_id, limit=1, counts=False)
    except ValueError:  # several longer ids start with it: none of them is this run
        return None
    if detail is None or detail.run.run_id != run_id:
        return None
    return detail.run.source, detail.run.org_id


class HeardOwner:
    """A telemetry callback that tells the owner of one run: the source its first message
    is taken from, as :class:`ReaderModel` takes it (a payload whose source is not its
    topic's, a timestamp from the future and the like are refused, as every reader does).

    ``on_known(source)`` is called once, when the owner is first heard.
    """

    def __init__(
        self,
        run_id: str,
        on_known: Callable[[str], None],
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.run_id = run_id
        self.owner: str | None = None
        self._on_known = on_known
        self._state = ReaderModel(prefix=prefix, keep_runs=None, keep_for=None)

    def __call__(self, message: Message) -> None:
        """Fold one message of the run's telemetry in; say the owner when first heard."""
        if self.owner is not None:
            return
        self._state.apply(message)
        run = self._state.runs.get(self.run_id)
        if run is not None:
            self.owner = run.source
            self._on_known(run.source)
