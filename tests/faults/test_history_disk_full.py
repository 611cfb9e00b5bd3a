"""History fault (c): the SQLite history on a full disk (an 8 MiB tmpfs), then room again.

`cascade record` says in one line that the database or disk is full, keeps what arrives in its
queue, and resumes by itself once there is room: nothing lost (the queue was large enough), and
SQLite's integrity check passes. Needs `mount -t tmpfs` (root); where the sandbox refuses it,
the test is skipped saying so. The same code path without a mount, SQLite's
``max_page_count``, is tested in packages/cascade-history/tests/test_disk_full.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History
from cascade.testkit import OwnBroker

from .conftest import Figures
from .history_helpers import (
    MARK_PROJECT,
    NumberedRun,
    RecorderProcess,
    stored_seqs,
    until,
    until_delivered,
)

# Room again must hold what SQLite writes before it checkpoints: its WAL grows to 1,000 pages
# (4 MiB) first. On a 2 MiB disk the WAL filled it again (0 KiB free, WAL 1.8-2.1 MB) and the
# run's last batch stayed queued for good; on RabbitMQ its end, delivered ahead of its last
# task states, was written first, so the run looked ended with up to 386 states never stored
# (2 runs in 5).
DISK = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of the test's own (skipped, saying why, where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` with one file until the filesystem has no room left; the file."""
    filler = disk / "filler"
    chunk = b"\0" * 4096
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(descriptor, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return filler
    finally:
        os.close(descriptor)


@pytest.mark.timeout(120)
async def test_history_sqlite_on_a_full_disk(
    own_broker: OwnBroker, small_disk: Path, figures: Figures
) -> None:
    """A clear one-line error, no corruption, and ingest resumes when space returns."""
    figures.scenario = "history (c) SQLite on a full disk (tmpfs)"
    db = small_disk / "history.sqlite3"
    url = f"sqlite:///{db}"
    engine = MqttConnector(own_broker.host, own_broker.port, presence=False)
    await engine.connect(require=True)
    address = f"{own_broker.host}:{own_broker.port}"
    recorder = await RecorderProcess.start("--host", address, "--db", str(db))
    loop = asyncio.get_running_loop()
    try:
        run = NumberedRun(engine)
        await run.start()
        await run.tasks(500)
        await until(lambda: len(stored_seqs(url, run.run_id)) == 501, what="the first part")
        filler = await asyncio.to_thread(_fill, small_disk)
        await run.tasks(3_000, per_second=2_000)
        error = await recorder.error_line("history write failed")
        # counted while the disk is full (a write that failed stored nothing of its batch): once
        # there is room, the retry may write all that is queued before a count could be taken
        before = len(stored_seqs(url, run.run_id))
        filler.unlink()  # room again
        room = loop.time()
        resumed = await until(
            lambda: len(stored_seqs(url, run.run_id)) > before, what="ingest resumed"
        )
        await run.tasks(500)
        await run.stop()
        await engine.flush(10)
        await until_delivered(url, engine)  # the run's end may come before its last states
        caught_up = loop.time() - room
        code, summary = await recorder.finish()
    finally:
        await recorder.close()
        await engine.disconnect()
    assert code == 0, recorder.errors
    assert error == (
        "history write failed (will retry): cannot write the history: database or disk is full"
    )
    assert not any("Traceback" in line for line in recorder.errors), recorder.errors
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    seqs = stored_seqs(url, run.run_id)
    with History(url) as history:
        [stored_run] = [r for r in history.runs() if r.project_id != MARK_PROJECT]
    assert stored_run.status == "Succeeded"
    assert seqs == sorted(run.sent)  # nothing lost: the queue carried the full disk
    assert stored_run.missing_events == 0
    assert " 0 dropped" in summary

    figures.emitted = len(run.sent)
    figures.delivered = len(seqs)
    figures.dropped = 0
    figures.seconds = resumed
    figures.what = "room again to first write"
    figures.notes.append(f"caught up {caught_up:.2f} s after room returned; stderr: {error}")
