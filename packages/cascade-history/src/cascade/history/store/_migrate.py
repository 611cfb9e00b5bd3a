"""Bringing a database's schema to the newest revision, keeping its data (Alembic).

Run by :class:`~cascade.history.History` on open. The whole upgrade is one
transaction; on PostgreSQL it first takes an advisory lock and on SQLite the
write lock, so that recorders and readers opening one database at once
migrate it once, in turn.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .._errors import HistoryError
from ._engine import WRITE, is_sqlite

__all__ = ["MIGRATIONS", "alembic_config", "head", "revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "_migrations"
"""The Alembic script directory shipped with the package."""

_LOCK = 0x63617363  # "casc": the PostgreSQL advisory lock held while migrating


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for the package's migrations (no ini file), on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision the package knows."""
    revision_id = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision_id is not None
    return revision_id


def revision(connection: sa.Connection) -> str | None:
    """The database's revision, ``None`` for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Migrate the database to :func:`head`; nothing to do costs one short transaction.

    Raises :class:`HistoryError` when the database is at a revision this
    package does not know (a newer cascade-history wrote it).
    """
    newest = head()
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    with engine.connect() as connection, connection.execution_options(**WRITE).begin():
        if not is_sqlite(connection):
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        current = revision(connection)
        if current == newest:
            return
        if current is not None and current not in known:
            raise HistoryError(
                f"the database is at schema revision {current}, which this cascade-history "
                "does not know: a newer version wrote it; upgrade cascade-history"
            )
        command.upgrade(alembic_config(connection), "head")
