"""Inserting a batch's rows at once, skipping what a unique index already has: each dialect's
fastest statement, written as driver SQL.

SQLAlchemy's executemany of a list of dicts processes every row's parameters in Python, which
costs more than SQLite takes to store the row; so the batch's rows go to the driver as they
are (``exec_driver_sql``, which still wraps the driver's errors and invalidates a connection
that broke, as any statement does):

- SQLite: multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING``, a
  chunk's values as one flat tuple (the statement SQLAlchemy's insertmanyvalues sends, at
  most the dialect's ``insertmanyvalues_max_parameters`` a statement; the texts recur, and
  sqlite3 keeps them prepared).
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
    values = operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    taken: list[Sequence[Any]] = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        flat = tuple(itertools.chain.from_iterable(map(values, chunk)))
        sql = _values_sql(connection.dialect, table, names, len(chunk), tuple(returning))
        result = connection.exec_driver_sql(sql, flat)
        if returning:
            taken.extend(result)
    return taken


@lru_cache(maxsize=256)
def _values_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    count: int,
    returning: tuple[str, ...],
) -> str:
    """SQLite's ``INSERT`` of ``count`` rows of ``names``."""
    quote = dialect.identifier_preparer.quote
    row = "(" + ", ".join("?" * len(names)) + ")"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) "
        f"VALUES {', '.join([row] * count)}{_taking(quote, returning)}"
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
