"""What every part of :class:`~cascade.history.History` stands on: its database's engine,
and reading and writing it in one transaction, a database's error raised as a
:class:`HistoryError`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import sqlalchemy as sa

from ._engine import WRITE
from ._errors import HistoryError, from_database_error

__all__ = ["HistoryBase", "Mode"]

_T = TypeVar("_T")
Mode = Literal["read", "write"]
"""How a :class:`History` opens its database: ``read`` never changes it, ``write`` may."""


class HistoryBase:
    """A database opened as ``mode`` (``_engine``), named ``location`` in errors."""

    _engine: sa.Engine
    mode: Mode
    location: str

    def _read(self, query: Callable[[sa.Connection], _T], what: str = "cannot read") -> _T:
        try:
            with self._engine.connect() as connection, connection.begin():
                return query(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise from_database_error(f"{what} {self.location}", exc) from None

    def _writable(self) -> None:
        if self.mode != "write":
            raise HistoryError(f"{self.location} is open read-only: open it with mode='write'")

    def _write(self, job: Callable[[sa.Connection], _T], what: str) -> _T:
        self._writable()
        try:
            with (
                self._engine.connect() as connection,
                connection.execution_options(**WRITE).begin(),
            ):
                return job(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise from_database_error(what, exc) from None
