"""The SQLAlchemy engine of a history: SQLite tuned for one writer and many readers, or PostgreSQL.

SQLite runs in WAL mode (readers never wait for the writer, nor it for
them) with ``synchronous=NORMAL`` (a commit does not wait for the disk; a
power cut may lose the last commits, never corrupt the file) and a 30 s busy
timeout. pysqlite's own transaction handling is turned off and each
transaction begins explicitly: ``BEGIN`` for readers, ``BEGIN IMMEDIATE`` for
writers (:data:`WRITE`), so that two writers queue on the lock instead of
failing half-way, and DDL is transactional (a migration is all or nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE", "create_engine", "is_sqlite"]

WRITE: dict[str, Any] = {"cascade_begin": "BEGIN IMMEDIATE"}
"""Execution options of a connection that writes (``BEGIN IMMEDIATE`` on SQLite)."""

_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine: sa.Engine | sa.Connection) -> bool:
    """Whether ``engine`` is SQLite."""
    return engine.dialect.name == "sqlite"


def create_engine(url: sa.URL) -> sa.Engine:
    """The engine for ``url``, SQLite files made with their folder and set up as above."""
    if url.get_backend_name() != "sqlite":
        # pre-ping: a server restarted since the last batch costs a reconnection, not the batch
        return sa.create_engine(url, pool_pre_ping=True)
    database = url.database or ""
    memory = database in ("", ":memory:")
    if not memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        # one connection for an in-memory database, else each would have a database of its own
        poolclass=StaticPool if memory else None,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we say BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("cascade_begin", "BEGIN"))
