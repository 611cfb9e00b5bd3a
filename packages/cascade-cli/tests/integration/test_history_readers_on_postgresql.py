"""The history's readers and `cascade history` on a real PostgreSQL (a private cluster): readers
never create nor migrate, say what the database is in one line, and migrate is the one way
(besides `cascade record`) the schema is made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.testkit import (
    PrivatePostgreSQL,
    new_database,
    own_postgresql,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgresql() -> Iterator[PrivatePostgreSQL]:
    yield from own_postgresql()


@pytest.fixture
def database_url(postgresql: PrivatePostgreSQL) -> Iterator[str]:
    yield from new_database(postgresql)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=200)))


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_readers_leave_an_empty_database_empty_until_migrate(database_url: str) -> None:
    for command in (["runs"], ["tasks"], ["audit"], ["run", "abcd"]):
        result = _invoke(*command, "--db", database_url)
        assert result.exit_code == 1, (command, result.output)
        assert "is not a Cascade history (no alembic_version" in result.output
        assert "\n" not in result.output.strip()
    assert _tables(database_url) == set()
    status = _invoke("history", "status", "--db", database_url)
    assert status.exit_code == 1
    assert "empty" in status.output
    sql = _invoke("history", "migrate", "--sql", "--db", database_url)
    assert sql.exit_code == 0
    assert "CREATE TABLE runs" in sql.output
    assert _tables(database_url) == set()
    migrated = _invoke("history", "migrate", "--db", database_url)
    assert migrated.exit_code == 0, migrated.output
    assert "up to date" in migrated.output
    assert {"alembic_version", "runs", "task_events"} <= _tables(database_url)
    assert _invoke("history", "status", "--db", database_url).exit_code == 0
    listed = _invoke("runs", "--db", database_url)
    assert listed.exit_code == 0, listed.output


def test_migrate_refuses_someone_elses_database(database_url: str) -> None:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE notes (body TEXT)"))
    finally:
        engine.dispose()
    for command in (["history", "migrate"], ["history", "migrate", "--sql"], ["runs"]):
        result = _invoke(*command, "--db", database_url)
        assert result.exit_code == 1, (command, result.output)
        assert "is not a Cascade history" in result.output
    assert _tables(database_url) == {"notes"}
