"""``cs.sql`` on SQLite: on a resource named as the Cascade engine's were (an SQLAlchemy
engine or connection), on a URL, on an engine given; rows as dicts, writes committed, a
missing resource or a bad query a clear failure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

import cascade.runtime as cs
from cascade.runtime import Engine, resource, task


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite file with a table of two users: its URL."""
    address = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sqlalchemy.create_engine(address)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE users (id INTEGER, name TEXT)"))
        conn.execute(sqlalchemy.text("INSERT INTO users VALUES (1, 'ada'), (2, 'grace')"))
    engine.dispose()
    return address


@task
def later(value: object) -> object:
    return value


def test_a_query_on_a_resource_engine(url: str) -> None:
    """``db`` names a resource whose value is an SQLAlchemy engine; rows come as dicts,
    ``:name`` placeholders from ``params`` (lazy too), and a write is committed."""

    @resource
    def analytics_db() -> Iterator[Any]:
        engine = sqlalchemy.create_engine(url)
        yield engine
        engine.dispose()

    engine = Engine(resources=[analytics_db])
    insert = cs.sql("INSERT INTO users VALUES (:id, :name)", "analytics_db", {"id": 3, "name": "x"})
    select = cs.sql(
        "SELECT id, name FROM users WHERE id >= :low ORDER BY id",
        db="analytics_db",
        params={"low": later(2)},
    ).after(insert)
    assert asyncio.run(engine.run([insert, select])) == [
        [],
        [{"id": 2, "name": "grace"}, {"id": 3, "name": "x"}],
    ]
    assert cs.run(cs.sql("SELECT count(*) AS n FROM users", url)) == [{"n": 3}]


def test_a_query_on_a_resource_connection(url: str) -> None:
    """A resource may give an open connection: the query runs on it and is committed."""

    @resource
    def db() -> Iterator[Any]:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            yield conn
        engine.dispose()

    done = asyncio.run(
        Engine(resources=[db]).run(cs.sql("UPDATE users SET name = 'Ada' WHERE id = 1", "db"))
    )
    assert done == []
    assert cs.run(cs.sql("SELECT name FROM users WHERE id = 1", url)) == [{"name": "Ada"}]


def test_a_url_or_an_engine_given(url: str) -> None:
    """A URL makes an engine for the query alone; an engine may be given as it is."""
    assert cs.run(cs.sql("SELECT name FROM users ORDER BY id", url)) == [
        {"name": "ada"},
        {"name": "grace"},
    ]
    engine = sqlalchemy.create_engine(url)
    assert cs.run(cs.sql("SELECT id FROM users WHERE name = :n", engine, {"n": "grace"})) == [
        {"id": 2}
    ]
    engine.dispose()


def test_a_missing_resource_or_a_bad_query_fails_clearly(url: str) -> None:
    """An unregistered resource fails the run before any task; bad SQL fails the task."""
    with pytest.raises(cs.ResourceMissing, match="nowhere"):
        cs.run(cs.sql("SELECT 1", "nowhere"))
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(cs.sql("SELECT * FROM no_such_table", url))
    assert raised.value.task_name == "sql"
    assert "no_such_table" in str(raised.value.exception)
