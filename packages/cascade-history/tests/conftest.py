"""Each test has a history of its own: a SQLite file in its temp dir (integration/: PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.history import History


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The database of the test's history (integration/ gives a PostgreSQL one instead)."""
    return f"sqlite:///{tmp_path / 'history.sqlite3'}"


@pytest.fixture
def history(database_url: str) -> Iterator[History]:
    """A history on ``database_url``, closed after the test."""
    with History(database_url, mode="write") as history:
        yield history
