"""A SQLite history that cannot grow (the disk is full): one clear line, the batch kept and
retried, the file intact, and ingest resumes once it can grow again.

SQLite's ``max_page_count`` makes any filesystem "full" at the file's present size: the same
error (``SQLITE_FULL``, "database or disk is full") and code path as a full disk, which the
fault suite tests on a real tmpfs (tests/faults/test_history_disk_full.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, HistoryError, Received, Recorder, Stored
from cascade.interfaces import events_topic

from .messages import T0, iso


class _SmallDisk(History):
    """A SQLite history whose file may grow only while ``room`` is set; ``failed`` is set when
    a write failed for want of room."""

    def __init__(self, url: str) -> None:
        super().__init__(url, mode="write")
        self.room = threading.Event()
        self.room.set()
        self.failed = threading.Event()
        engine = self._engine
        sa.event.listen(engine, "connect", self._limit)

    def _limit(self, dbapi_connection: Any, _record: Any) -> None:
        if not self.room.is_set():
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    def fill(self) -> None:
        """No more room: connections made from now on cannot grow the file."""
        self.room.clear()
        self._engine.dispose()

    def free(self) -> None:
        """Room again."""
        self.room.set()
        self._engine.dispose()

    def store(self, batch: Sequence[Received], **gaps: Any) -> Stored:
        try:
            return super().store(batch, **gaps)
        except HistoryError:
            self.failed.set()
            raise


async def test_a_full_disk_is_one_line_and_ingest_resumes_with_room(tmp_path: Path) -> None:
    """Writes fail with "database or disk is full", nothing is lost, the file stays sound."""
    path = tmp_path / "history.sqlite3"
    history = _SmallDisk(f"sqlite:///{path}")
    broker = InMemoryBroker()
    async with (
        InMemoryConnector(broker, presence=False) as connector,
        InMemoryConnector(broker, presence=False) as engine,
    ):
        recorder = Recorder(connector, history, retry_initial=0.01, retry_max=0.05)
        await recorder.start()
        history.fill()
        for seq in range(1, 301):
            envelope = {
                "ts": iso(T0 + seq),
                "run_id": "r1",
                "org_id": "local",
                "project_id": "default",
                "source": "s",
                "seq": seq,
                "body": {
                    "type": "TaskStateEvent",
                    "task_id": f"t-{seq}",
                    "task_name": "t",
                    "state": "COMPLETED",
                    "duration_ms": 1.0,
                    "error": "x" * 500,  # rows that need new pages
                },
            }
            await engine.publish(events_topic("local", "default", "r1"), envelope)
        await broker.idle()
        assert await _wait(history.failed)
        stats = recorder.stats
        assert stats.last_error == "cannot write the history: database or disk is full"
        assert stats.stored == 0
        history.free()
        await recorder.flush(timeout=10)
        await recorder.stop()
    stats = recorder.stats
    assert (stats.stored, stats.dropped, stats.rejected) == (300, 0, 0)
    assert stats.write_errors >= 1
    [run] = history.runs()
    assert run.missing_events == 0
    history.close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def _wait(event: threading.Event) -> bool:
    """Whether ``event`` (set by a worker thread) was set within 10 s."""
    return await asyncio.to_thread(event.wait, 10)
