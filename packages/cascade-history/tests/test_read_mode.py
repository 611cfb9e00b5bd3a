"""``History(mode="read")``, what every reader opens: it never creates, migrates nor writes,
and says in one line what to do with a database it cannot read (on both databases)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from cascade.history import History, HistoryError, alembic_config

from .messages import T0, lifecycle


def _execute(database_url: str, *statements: str) -> None:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_a_reader_reads_what_a_writer_wrote(database_url: str) -> None:
    with History(database_url, mode="write") as writer:
        writer.store([lifecycle("r1", "ENGINE_STARTED", T0)])
    with History(database_url) as reader:
        assert reader.mode == "read"
        assert [run.run_id for run in reader.runs()] == ["r1"]


def test_a_reader_cannot_write(database_url: str) -> None:
    """store and prune refuse, and the database itself refuses a write on its connection."""
    History(database_url, mode="write").close()
    with History(database_url) as reader:
        with pytest.raises(HistoryError, match="open read-only"):
            reader.store([lifecycle("r1", "ENGINE_STARTED", T0)])
        with pytest.raises(HistoryError, match="open read-only"):
            reader.prune(T0)
        engine = reader._engine  # noqa: SLF001 - its own connection
        with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError):
            connection.execute(sa.text("DELETE FROM runs"))


def test_a_database_that_is_no_history_is_refused_untouched(database_url: str) -> None:
    """Another application's database: one line, and no table of ours added."""
    _execute(database_url, "CREATE TABLE notes (body TEXT)")
    with pytest.raises(HistoryError, match=r"is not a Cascade history \(no alembic_version"):
        History(database_url)
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            assert set(sa.inspect(connection).get_table_names()) == {"notes"}
    finally:
        engine.dispose()


def test_an_older_history_says_how_to_migrate_and_stays_old(database_url: str) -> None:
    with History(database_url, mode="write", migrate=False) as empty:
        engine = sa.create_engine(empty.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
    finally:
        engine.dispose()
    with pytest.raises(HistoryError, match=r"revision 0001, older than .*cascade history migrate"):
        History(database_url)
    _execute(database_url, "SELECT 1")
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == "0001"
    finally:
        engine.dispose()
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() != "0001"


def test_a_newer_history_says_to_upgrade_cascade(database_url: str) -> None:
    History(database_url, mode="write").close()
    _execute(database_url, "UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(
        HistoryError, match=r"revision f00d, which this Cascade does not know.*upgrade"
    ):
        History(database_url)


def test_an_unknown_mode_is_a_value_error(database_url: str) -> None:
    with pytest.raises(ValueError, match="mode must be"):
        History(database_url, mode="append")  # type: ignore[arg-type]


def test_a_recorder_refuses_a_history_open_to_read(database_url: str) -> None:
    """It would only retry every batch: a clear error instead, at once."""
    from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
    from cascade.history import Recorder

    History(database_url, mode="write").close()
    with History(database_url) as reader:
        connector = InMemoryConnector(InMemoryBroker(), presence=False)
        with pytest.raises(ValueError, match="mode='write'"):
            Recorder(connector, reader)
