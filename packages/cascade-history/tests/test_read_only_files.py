"""SQLite readers: a file is opened read-only (``mode=ro``), even on read-only media
(``immutable=1``), never created, and a file that is not a history is left byte for byte."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cascade.history import History, HistoryError

from .messages import T0, lifecycle


@contextmanager
def _read_only(*paths: Path) -> Iterator[None]:
    """``paths`` cannot be changed, nor files made in them, while inside: ``chmod a-w``, or
    for root (whom modes do not stop) the immutable attribute."""
    if os.geteuid() != 0:
        modes = [path.stat().st_mode for path in paths]
        for path in paths:
            path.chmod(path.stat().st_mode & 0o555)
        try:
            yield
        finally:
            for path, mode in zip(paths, modes, strict=True):
                path.chmod(mode)
        return
    try:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make files read-only for root here: {exc}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def _state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_a_history_on_read_only_media_is_read(tmp_path: Path) -> None:
    """Its folder and file cannot be written (so not even SQLite's WAL index can be made):
    the reader still reads it, and nothing is added beside it."""
    path = tmp_path / "h.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([lifecycle("r1", "ENGINE_STARTED", T0)])
    before = sorted(tmp_path.iterdir())
    with _read_only(path, tmp_path), History(path) as reader:
        assert [run.run_id for run in reader.runs()] == ["r1"]
    assert sorted(tmp_path.iterdir()) == before


def test_a_file_that_is_no_history_is_left_untouched(tmp_path: Path) -> None:
    """``cascade runs --db other.sqlite``: one line saying so; not a byte nor mtime changed."""
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.close()
    before = _state(other)
    with pytest.raises(HistoryError) as caught:
        History(other)
    assert (
        str(caught.value)
        == f"{other} is not a Cascade history (no alembic_version or runs or task_events table)"
    )
    assert _state(other) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.sqlite"]


def test_a_file_that_is_not_sqlite_is_one_line_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to be read as one " * 20)
    before = _state(text)
    with pytest.raises(HistoryError, match=r"cannot open .*notes\.txt: file is not a database"):
        History(text)
    assert _state(text) == before


def test_an_up_to_date_history_is_read_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with History(path, mode="write") as writer:
        writer.store([lifecycle("r1", "ENGINE_STARTED", T0)])
    before = _state(path)
    with History(path) as reader:
        reader.runs()
        reader.run("r1")
    assert _state(path) == before
