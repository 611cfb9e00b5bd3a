"""What a reader checks before it reads a database: that it is a Cascade history, at the
revision this code reads. Never changes anything (a reader's connection cannot)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from .._errors import HistoryError
from ._migrate import MIGRATIONS, head, revision

__all__ = ["check_readable", "has_tables", "known_revisions", "refuse_foreign"]

_OURS = ("runs", "task_events")  # tables every revision of a Cascade history has


def known_revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    return [script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()][::-1]


def _migrate_hint(connection: sa.Connection, location: str) -> str:
    db = location if connection.dialect.name == "sqlite" else "URL"
    return f"cascade history migrate --db {db}"


def has_tables(connection: sa.Connection) -> bool:
    """Whether the database on ``connection`` has any table (a new file has none until its
    first migration commits)."""
    return bool(sa.inspect(connection).get_table_names())


def check_readable(connection: sa.Connection, location: str) -> None:
    """Raise :class:`HistoryError` (one line, saying what to do) unless the database on
    ``connection`` is a Cascade history at this code's revision."""
    tables = set(sa.inspect(connection).get_table_names())
    missing = [name for name in ("alembic_version", *_OURS) if name not in tables]
    if missing:
        raise HistoryError(f"{location} is not a Cascade history (no {' or '.join(missing)} table)")
    current = revision(connection)
    if current is None:
        raise HistoryError(f"{location} is not a Cascade history (no schema revision)")
    newest = head()
    if current == newest:
        return
    if current in known_revisions():
        raise HistoryError(
            f"{location} is at schema revision {current}, older than this Cascade's {newest}: "
            f"migrate it ({_migrate_hint(connection, location)}), or let cascade record do it"
        )
    raise HistoryError(
        f"{location} is at schema revision {current}, which this Cascade does not know: "
        "a newer one wrote it; upgrade Cascade (pip install -U cascade-history)"
    )


def refuse_foreign(connection: sa.Connection, location: str) -> None:
    """Raise :class:`HistoryError` when the database on ``connection`` holds tables but no
    Cascade history: a writer adds its schema to an empty database or a history only."""
    tables = set(sa.inspect(connection).get_table_names())
    if tables and "alembic_version" not in tables:
        raise HistoryError(
            f"{location} is not a Cascade history (no alembic_version table, other tables): "
            "give a new file or an empty database"
        )
