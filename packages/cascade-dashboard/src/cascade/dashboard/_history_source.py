"""Where the dashboard's History section reads from: the history ``--db`` names, else the
default one `cascade record` writes; and what the page and the startup line say without one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.history import History

__all__ = ["HistorySource"]

_NOT_TOLD = "This dashboard has no history to read yet: its admins see why."
# what it takes to read one (cascade-cli[history] brings it with the `cascade record` that
# writes it)
_EXTRA_HINT = "needs the history extra: pip install 'cascade-cli[history]'"


class HistorySource:
    """The dashboard's history, and what to say while it has none.

    ``HistorySource(history)`` serves a history the caller opened (``--db``) as it is.
    :meth:`default` is the file `cascade record` writes without ``--db``, opened read-only if
    it exists (never made here); while it does not, or cannot be read, :attr:`note` says so
    and what to do, and :meth:`refresh` tries it again: a `cascade record` started after the
    dashboard shows on the page's next load. :meth:`awaiting` does the same for a file
    ``--db`` names that is not there yet, or there without tables yet (a recorder started in
    the same second, its first migration not committed). ``HistorySource()``: none wanted
    (the page shows no History section).
    """

    def __init__(
        self,
        history: History | None = None,
        *,
        location: str | None = None,
        problem: str | None = None,
        default: Path | None = None,
    ) -> None:
        self.history = history
        """The history open now, or ``None``."""
        self.location = history.location if history is not None else location
        """Where it is (or would be), for people; ``None`` when that is not known."""
        self.problem = problem
        """Why the history there cannot be used, in one line; ``None`` when it can, or is not
        there yet."""
        self.record = "cascade record"
        """The command that starts recording, as the note says it (the dashboard gives its
        broker's address)."""
        self._default = default
        self._opening = asyncio.Lock()

    @classmethod
    def of(cls, history: History | HistorySource | None) -> HistorySource:
        """``history`` itself if it is a source, else a source serving it as it is."""
        return history if isinstance(history, HistorySource) else cls(history)

    @classmethod
    def default(cls) -> HistorySource:
        """The default history (``cascade.history.default_path()``), opened read-only if it is
        there; blocks while it opens, so call it before serving."""
        try:
            from cascade.history import default_path
        except ImportError:
            return cls(problem=f"the History section {_EXTRA_HINT}")
        return cls.awaiting(default_path())

    @classmethod
    def awaiting(cls, path: Path) -> HistorySource:
        """The SQLite history at ``path``, opened read-only if it is there, else looked for
        again as :meth:`default` is; blocks while it opens, so call it before serving."""
        source = cls(location=str(path), default=path)
        source._open()
        return source

    @property
    def default_path(self) -> Path | None:
        """The file this source looks for (the default one, or one ``--db`` named that was not
        there yet), ``None`` when it serves a given history."""
        return self._default

    @property
    def note(self) -> str | None:
        """What the page says instead of the history: why there is none and what to do;
        ``None`` with one, or when none is wanted."""
        if self.history is not None:
            return None
        if self.problem is not None:
            return self.problem
        if self._default is None:
            return None
        return (
            f"No history yet at {self.location}: run `{self.record}` to keep runs; "
            "this page shows it once it is there (it looks again every few seconds)."
        )

    def note_for(self, where: bool) -> str | None:
        """:attr:`note` as told to someone who may (``where``) or may not be told where the
        history is: to the latter, that there is none to read, nothing of why."""
        note = self.note
        if where or note is None:
            return note
        return _NOT_TOLD

    def line(self) -> str | None:
        """The dashboard's startup line about its history; ``None`` when none is wanted."""
        if self.history is not None:
            return f"history: {self.location}"
        if self.problem is not None:
            return f"history: {self.problem}"
        if self._default is None:
            return None
        return f"history: none yet at {self.location}: run `{self.record}` to keep runs"

    def _open(self) -> None:
        path = self._default
        if self.history is not None or path is None:
            return
        if not path.exists():
            self.problem = None  # gone again: not there yet, as at first
            return
        from cascade.history import History, HistoryError, HistoryMissing

        try:
            self.history = History(path, mode="read")
        except HistoryMissing:  # made, its tables not yet: waited for as a missing one
            self.problem = None
        except HistoryError as exc:
            self.problem = str(exc)
        else:
            self.problem = None

    async def refresh(self) -> None:
        """Try the default history again while none is open, in a worker thread; one try at a
        time (a request meanwhile answers with what there is, never waits)."""
        if self.history is not None or self._default is None or self._opening.locked():
            return
        async with self._opening:
            await asyncio.to_thread(self._open)

    def close(self) -> None:
        """Close the history, if one is open."""
        if self.history is not None:
            self.history.close()
