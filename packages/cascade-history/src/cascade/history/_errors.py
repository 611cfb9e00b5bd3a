"""The one error a history raises for a database it cannot use."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from cascade.interfaces import CascadeError

__all__ = ["HistoryError", "HistoryMissing", "LocationError", "from_database_error"]


class HistoryError(CascadeError):
    """The database cannot be opened, migrated, written or read right now.

    Its message is one line naming the database (without its password) and
    the cause, fit for a command's error. Writes that fail with it may
    succeed later (the server is back, the disk has room again): the
    recorder keeps the batch and retries.
    """


class HistoryMissing(HistoryError):
    """A SQLite file opened for reading is not there yet (`cascade record` makes it):
    ``path`` is where it will be, so a reader may wait for it."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class LocationError(HistoryError):
    """The database's URL or path cannot be read (a malformed URL, a port that is not a
    port): the caller's mistake, found before anything is opened."""


def from_database_error(what: str, exc: sa.exc.SQLAlchemyError) -> HistoryError:
    """``what`` failed because of ``exc``: its driver's first line, as a :class:`HistoryError`."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    return HistoryError(f"{what}: {reason}")
