"""A history's schema seen and migrated on purpose: its revision against this code's, the SQL
a migration would run (Alembic's offline mode), and the migration itself."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from ._errors import HistoryError, LocationError, from_database_error
from ._history import History
from .store._engine import create_engine
from .store._location import describe, resolve_url
from .store._migrate import alembic_config, head, revision
from .store._readable import known_revisions

__all__ = ["SchemaStatus", "migrate", "migration_sql", "schema_status"]


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema is against this code's."""

    location: str
    """The database, for people (no password)."""
    exists: bool
    """Whether there is a database there at all (a SQLite file)."""
    current: str | None
    """Its revision; ``None``: no Cascade schema yet (or none at all)."""
    head: str
    """The newest revision this code knows."""
    known: bool
    """Whether this code knows ``current`` (``False``: a newer Cascade wrote it)."""
    pending: tuple[str, ...]
    """The revisions a migration would apply, oldest first."""
    foreign: bool
    """Whether it holds tables but no Cascade history (it is someone else's database)."""

    @property
    def up_to_date(self) -> bool:
        """Whether readers of this code can read it as it is."""
        return self.current == self.head


def _url(url: str | os.PathLike[str] | None) -> sa.URL:
    try:
        return resolve_url(url)
    except ValueError as exc:
        raise LocationError(str(exc)) from None


def schema_status(url: str | os.PathLike[str] | None = None) -> SchemaStatus:
    """The schema of the database ``url`` names (as :class:`History` reads it), looked at
    read-only: nothing is created, not even a missing SQLite file."""
    resolved = _url(url)
    location = describe(resolved)
    newest = head()
    known = known_revisions()
    database = resolved.database or ""
    if resolved.get_backend_name() == "sqlite" and not Path(database).exists():
        return SchemaStatus(location, False, None, newest, True, tuple(known), False)
    try:
        engine = create_engine(resolved, readonly=True)
    except ImportError as exc:
        raise HistoryError(f"cannot open {location}: {exc.name or exc} is not installed") from None
    try:
        with engine.connect() as connection, connection.begin():
            tables = set(sa.inspect(connection).get_table_names())
            current = revision(connection) if "alembic_version" in tables else None
    except sa.exc.SQLAlchemyError as exc:
        raise from_database_error(f"cannot open {location}", exc) from None
    finally:
        engine.dispose()
    foreign = bool(tables) and current is None
    if current is None:
        pending = tuple(known)
    elif current in known:
        pending = tuple(known[known.index(current) + 1 :])
    else:
        pending = ()
    return SchemaStatus(
        location, True, current, newest, current is None or current in known, pending, foreign
    )


def migration_sql(url: str | os.PathLike[str] | None = None) -> str:
    """The SQL that :func:`migrate` would run on the database ``url`` names, from its revision
    (from nothing for a new one), without connecting to change anything (Alembic's offline
    mode). Revision 0003 fills the rollup from the executions already stored only online."""
    status = schema_status(url)
    _refuse(status)
    if not status.pending:
        return ""
    config = alembic_config()
    config.attributes["url"] = _url(url)
    out = io.StringIO()
    config.output_buffer = out
    start = f"{status.current}:" if status.current is not None else ""
    command.upgrade(config, f"{start}head", sql=True)
    return out.getvalue()


def migrate(url: str | os.PathLike[str] | None = None) -> SchemaStatus:
    """Create or migrate the history at ``url`` to this code's revision, keeping its data
    (what a ``History(url, mode="write")`` does on open); its status afterwards."""
    _refuse(schema_status(url))
    History(url, mode="write").close()
    return schema_status(url)


def _refuse(status: SchemaStatus) -> None:
    if status.foreign:
        raise HistoryError(f"{status.location} is not a Cascade history (no alembic_version table)")
    if not status.known:
        raise HistoryError(
            f"{status.location} is at schema revision {status.current}, which this Cascade "
            "does not know: a newer one wrote it; upgrade Cascade (pip install -U cascade-history)"
        )
