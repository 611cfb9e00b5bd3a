"""Each test has a history of its own: a SQLite file in its temp dir (integration/: PostgreSQL),
and, where it asks, an in-memory broker and a recorder on it writing into that history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Recorder


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The database of the test's history (integration/ gives a PostgreSQL one instead)."""
    return f"sqlite:///{tmp_path / 'history.sqlite3'}"


@pytest.fixture
def history(database_url: str) -> Iterator[History]:
    """A history on ``database_url``, closed after the test."""
    with History(database_url, mode="write") as history:
        yield history


@pytest.fixture
def broker() -> InMemoryBroker:
    """An in-memory broker of the test's own."""
    return InMemoryBroker()


@pytest.fixture
async def recorder(broker: InMemoryBroker, history: History) -> AsyncIterator[Recorder]:
    """A started recorder on ``broker`` writing into ``history``."""
    connector = InMemoryConnector(broker, presence=False, source_id="recorder")
    await connector.connect()
    recorder = Recorder(connector, history)
    await recorder.start()
    yield recorder
    await recorder.stop()
    await connector.disconnect()
