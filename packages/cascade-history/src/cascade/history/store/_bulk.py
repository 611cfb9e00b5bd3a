"""Inserting a batch's rows at once, skipping what a unique index already has: each dialect's
fastest statement, written as driver SQL.

SQLAlchemy's executemany of a list of dicts processes every row's parameters in Python, which
costs more than SQLite takes to store the row; so the batch's rows go to the driver as they
are (``exec_driver_sql``, which still wraps the driver's errors and invalidates a connection
that broke, as any statement does):

- SQLite: multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING``, a chunk's
  values as one flat tuple (the statement SQLAlchemy's insertmanyvalues sends, at most the
  dialect's ``insertmanyvalues_max_parameters`` a statement; the texts recur, and sqlite3
  keeps them prepared). Which rows it took is read from its count of changes, not from
  ``RETURNING`` (which costs a third more than the insert itself: a result row made for each
  row): all of them (the usual case: the chunk's own values are what was taken) or none (a
  chunk of copies); a chunk of both is undone (``SAVEPOINT``) and inserted again with
  ``RETURNING``.
- PostgreSQL: the rows as one JSON document, ``INSERT ... SELECT ... FROM
  json_to_recordset($1)``: one statement of the same text whatever the rows, which the server
  prepares once, one parameter that msgspec writes in C. Measured on 1,000-row batches of task
  events (bench_recorder_cpu.py's doc): psycopg's arrays for ``unnest`` cost 10 µs of the
  recorder's CPU a row, ``COPY`` into a staging table 2.7 µs, the JSON document 1.3 µs.

Values are stored as SQLAlchemy would store them: a JSON column's value comes as the text
``json.dumps`` writes (what SQLAlchemy's SQLite dialect and psycopg's ``Json`` both bind with
this package's engines; ``null`` for ``None``). The rows are inserted in the order given, so
of two copies in one batch the first is kept, as before.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
import sqlalchemy as sa

__all__ = ["insert_rows"]

_MOST_ROWS = 500  # a SQLite statement's rows (fewer when the columns are many)
_encode = msgspec.json.Encoder().encode


def insert_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    returning: Sequence[str],
) -> list[Sequence[Any]]:
    """Insert the ``rows`` (dicts with the same keys) that ``table`` does not have yet (by its
    unique indexes); ``returning``'s columns of each row it took (none: a table without a
    unique index, whose rows all go in). A JSON column's value is given as its JSON text, as
    ``json.dumps`` writes it.

    ``TypeError`` or ``ValueError`` for a value the statement cannot carry (a content error,
    as SQLAlchemy's own would be).
    """
    if not rows:
        return []
    names = tuple(rows[0])
    if connection.dialect.name == "postgresql":
        jsons = tuple(name for name in names if isinstance(table.c[name].type, sa.JSON))
        sql = _recordset_sql(connection.dialect, table, names, jsons, tuple(returning))
        try:
            document = _encode(rows).decode()
        except msgspec.EncodeError as exc:
            raise ValueError(str(exc)) from None
        result = connection.exec_driver_sql(sql, (document,))
        return list(result) if returning else []
    most = connection.dialect.insertmanyvalues_max_parameters // len(names)
    step = max(1, min(_MOST_ROWS, most))
    values = _getter(names)
    returning = tuple(returning)
    # the columns taken can be read from the rows themselves (else only from RETURNING)
    counted = bool(returning) and all(name in names for name in returning)
    taken: list[Sequence[Any]] = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        flat = tuple(itertools.chain.from_iterable(map(values, chunk)))
        if counted:
            taken.extend(_insert_counted(connection, table, names, chunk, flat, returning))
            continue
        sql = _values_sql(connection.dialect, table, names, len(chunk), returning)
        result = connection.exec_driver_sql(sql, flat)
        if returning:
            taken.extend(result)
    return taken


def _insert_counted(
    connection: sa.Connection,
    table: sa.Table,
    names: tuple[str, ...],
    chunk: list[dict[str, Any]],
    flat: tuple[Any, ...],
    returning: tuple[str, ...],
) -> list[Sequence[Any]]:
    """SQLite: insert ``chunk`` without ``RETURNING``, telling the rows taken by the count of
    changes (see the module's docs); ``returning``'s values of each, as ``RETURNING`` gives.

    sqlite3's ``rowcount`` of an ``INSERT`` is SQLite's ``changes()``: the rows inserted,
    none of those ``ON CONFLICT DO NOTHING`` skipped (the tables have no triggers).
    """
    dialect = connection.dialect
    connection.exec_driver_sql("SAVEPOINT cascade_chunk")
    sql = _values_sql(dialect, table, names, len(chunk), returning, counted=True)
    inserted = connection.exec_driver_sql(sql, flat).rowcount
    if inserted == len(chunk) or inserted == 0:
        connection.exec_driver_sql("RELEASE cascade_chunk")
        return list(map(_getter(returning), chunk)) if inserted else []
    connection.exec_driver_sql("ROLLBACK TO cascade_chunk")  # some were copies: which?
    connection.exec_driver_sql("RELEASE cascade_chunk")
    sql = _values_sql(dialect, table, names, len(chunk), returning)
    return list(connection.exec_driver_sql(sql, flat))


@lru_cache(maxsize=64)
def _getter(names: tuple[str, ...]) -> Any:
    """A row's values of ``names``, as a tuple."""
    return operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)


@lru_cache(maxsize=256)
def _values_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    count: int,
    returning: tuple[str, ...],
    *,
    counted: bool = False,
) -> str:
    """SQLite's ``INSERT`` of ``count`` rows of ``names`` (``counted``: skipping what a unique
    index has without saying which, as with ``returning`` but without ``RETURNING``)."""
    quote = dialect.identifier_preparer.quote
    row = "(" + ", ".join("?" * len(names)) + ")"
    taking = " ON CONFLICT DO NOTHING" if counted else _taking(quote, returning)
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) "
        f"VALUES {', '.join([row] * count)}{taking}"
    )


@lru_cache(maxsize=64)
def _recordset_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    jsons: tuple[str, ...],
    returning: tuple[str, ...],
) -> str:
    """PostgreSQL's ``INSERT`` of the rows of a JSON document (its one parameter)."""
    quote = dialect.identifier_preparer.quote
    # a JSON column's value comes as the text json.dumps wrote, stored as it is
    types = ", ".join(
        f"{quote(name)} {'text' if name in jsons else table.c[name].type.compile(dialect)}"
        for name in names
    )
    selected = ", ".join(f"{quote(name)}::json" if name in jsons else quote(name) for name in names)
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) SELECT {selected} "
        f"FROM json_to_recordset(%s::json) AS r({types}){_taking(quote, returning)}"
    )


def _taking(quote: Any, returning: tuple[str, ...]) -> str:
    """What follows the rows: skip those a unique index has, and say which were taken."""
    if not returning:
        return ""
    return f" ON CONFLICT DO NOTHING RETURNING {', '.join(map(quote, returning))}"
