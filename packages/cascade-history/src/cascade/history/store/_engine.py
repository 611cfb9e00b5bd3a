"""The SQLAlchemy engine of a history: SQLite tuned for one writer and many readers, or PostgreSQL.

SQLite runs in WAL mode (readers never wait for the writer, nor it for
them) with ``synchronous=NORMAL`` (a commit does not wait for the disk; a
power cut may lose the last commits, never corrupt the file) and a 30 s busy
timeout. pysqlite's own transaction handling is turned off and each
transaction begins explicitly: ``BEGIN`` for readers, ``BEGIN IMMEDIATE`` for
writers (:data:`WRITE`), so that two writers queue on the lock instead of
failing half-way, and DDL is transactional (a migration is all or nothing).

A reader's engine (``readonly=True``) cannot change the database at all: SQLite files are
opened ``file:PATH?mode=ro`` (and ``immutable=1`` when even that cannot open them: a file on
read-only media, or in a folder where its ``-shm`` cannot be made), and never switched to WAL;
PostgreSQL sessions are ``default_transaction_read_only``, so the server refuses any write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE", "create_engine", "is_sqlite"]

WRITE: dict[str, Any] = {"cascade_begin": "BEGIN IMMEDIATE"}
"""Execution options of a connection that writes (``BEGIN IMMEDIATE`` on SQLite)."""

_BUSY_TIMEOUT_MS = 30_000
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14


def is_sqlite(engine: sa.Engine | sa.Connection) -> bool:
    """Whether ``engine`` is SQLite."""
    return engine.dialect.name == "sqlite"


def create_engine(url: sa.URL, *, readonly: bool = False) -> sa.Engine:
    """The engine for ``url``, SQLite files made with their folder and set up as above;
    ``readonly``: one that cannot write, and makes nothing (see above)."""
    if url.get_backend_name() != "sqlite":
        # pre-ping: a server restarted since the last batch costs a reconnection, not the batch
        engine = sa.create_engine(url, pool_pre_ping=True)
        if readonly:
            event.listen(engine, "connect", _postgresql_readonly)
        return engine
    database = url.database or ""
    memory = database in ("", ":memory:")
    if readonly and not memory:
        path = str(Path(database).resolve())
        engine = sa.create_engine(url, creator=lambda: _sqlite_readonly(path))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
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


def _sqlite_readonly(path: str) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` that cannot write: ``mode=ro``, else (the
    file's folder or media is read-only, so its WAL index cannot be opened) ``immutable=1``."""
    uri = "file:" + pathname2url(path)
    timeout = _BUSY_TIMEOUT_MS / 1000
    connection = sqlite3.connect(
        uri + "?mode=ro", timeout=timeout, check_same_thread=False, uri=True
    )
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        connection.close()
        if not _cannot_open(exc):  # locked, say: not a matter of media
            raise
        # nothing can write a file on read-only media: reading it as unchanging is true
        connection = sqlite3.connect(
            uri + "?mode=ro&immutable=1", timeout=timeout, check_same_thread=False, uri=True
        )
    connection.isolation_level = None  # we say BEGIN ourselves (see _sqlite_begin)
    connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA query_only=1")
    return connection


def _cannot_open(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLite's CANTOPEN or READONLY (the WAL index cannot be made)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN)
    text = str(exc)
    return "unable to open" in text or "readonly" in text


def _postgresql_readonly(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        cursor.close()
    dbapi_connection.commit()  # a SET rolled back is undone: keep it for the session
