"""SQLite: where the default file is, and how it is set up (WAL, synchronous=NORMAL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from cascade.history import History, HistoryError, LocationError, default_path


def test_the_default_file_is_in_the_users_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """platformdirs' user data dir: $XDG_DATA_HOME/cascade on Linux; made on first open."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / "cascade" / "history.sqlite3"
    assert default_path() == expected
    with History(mode="write") as history:
        assert history.location == str(expected)
    assert expected.is_file()


def test_a_path_is_a_sqlite_file(tmp_path: Path) -> None:
    """A plain path (no scheme) names a SQLite file, its folders made."""
    path = tmp_path / "a" / "b" / "h.db"
    with History(str(path), mode="write") as history:
        assert (history.dialect, history.location) == ("sqlite", str(path))
    assert path.is_file()


def test_the_file_is_in_wal_mode_with_normal_sync(history: History) -> None:
    """Readers never wait on the writer; a commit does not wait for the disk."""
    engine = history._engine  # noqa: SLF001 - the settings of its own connections
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """Unusable locations fail with a HistoryError naming them."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot open"):
        History(str(blocker / "sub" / "h.db"), mode="write")


def test_a_url_that_is_none_is_refused() -> None:
    """Text with a scheme that SQLAlchemy cannot read is a HistoryError."""
    with pytest.raises(HistoryError):
        History("nonsense://")


@pytest.mark.parametrize(
    "url", ["postgresql://[::1", "postgresql://db:abc/x", "postgresql://db:99999/x", "://x"]
)
def test_a_malformed_url_is_a_location_error(url: str) -> None:
    """A URL whose port is not one (an unclosed IPv6 bracket, a name, beyond 65535) is a
    LocationError (the caller's mistake), saying so, before anything is opened; not a
    ValueError of SQLAlchemy's ("invalid literal for int()")."""
    with pytest.raises(LocationError) as caught:
        History(url, mode="write")
    assert "invalid literal" not in str(caught.value)
    assert isinstance(caught.value, HistoryError)


def test_an_unreachable_server_is_one_line() -> None:
    """PostgreSQL that is not there: HistoryError, one line, no password in it."""
    with pytest.raises(HistoryError) as caught:
        History("postgresql://u:secret@127.0.0.1:1/db", mode="write")
    message = str(caught.value)
    assert "\n" not in message
    assert "secret" not in message
    assert message.startswith("cannot open postgresql+psycopg://u:***@127.0.0.1:1/db")


def test_wal_readers_do_not_wait_for_a_writer(history: History) -> None:
    """A reader reads while another connection holds the write lock."""
    path = sa.make_url(history.url).database
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, as a writing History takes it
        writer.execute(
            "INSERT INTO presence (source, status, session, ts, received_at)"
            " VALUES ('s', 'online', 1, 1, 1)"
        )
        assert history.runs() == []
        writer.execute("ROLLBACK")
    finally:
        writer.close()


def test_a_reader_does_not_create_the_file(tmp_path: Path) -> None:
    """A reader (the default mode): a missing file is a HistoryError saying what makes it."""
    path = tmp_path / "none.sqlite3"
    with pytest.raises(
        HistoryError, match=r"no history at .* yet: record one with cascade record --db"
    ):
        History(str(path))
    assert not path.exists()
