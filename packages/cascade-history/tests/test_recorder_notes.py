"""A recorder notes in the history whether it keeps up, while it happens: behind as soon as its
queue is, caught up once it has written it (``History.recorders``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Received, Recorder, RecorderNote, Stored
from cascade.interfaces import events_topic

from .messages import T0, iso


class _HeldHistory(History):
    """A history whose writes of events wait until :attr:`go` is set (a slow database), and
    which tells the test each note it keeps."""

    def __init__(self, url: str) -> None:
        super().__init__(url, mode="write")
        self.go = threading.Event()
        self.notes: asyncio.Queue[RecorderNote] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def store(self, batch: Sequence[Received], **counts: Any) -> Stored:
        if batch:
            self.go.wait(10)
        return super().store(batch, **counts)

    def note_recorder(self, note: RecorderNote) -> None:
        super().note_recorder(note)
        self.loop.call_soon_threadsafe(self.notes.put_nowait, note)


async def _noted(history: _HeldHistory, behind: bool) -> RecorderNote:
    while True:
        note = await asyncio.wait_for(history.notes.get(), 10)
        if note.behind == behind:
            return note


async def test_a_recorder_notes_it_falls_behind_and_catches_up(tmp_path: Any) -> None:
    """Fifty events queued behind a slow write (its queue of 100 a tenth full): the history
    says the recorder is behind while the write waits, and that it keeps up once written."""
    history = _HeldHistory(f"sqlite:///{tmp_path}/notes.db")
    broker = InMemoryBroker()
    topic = events_topic("local", "default", "r1")
    try:
        async with InMemoryConnector(broker, presence=False) as connector:
            recorder = Recorder(connector, history, max_queue=100, name="rec-1", note_every=60)
            await recorder.start()
            assert not (await _noted(history, behind=False)).behind  # its first note: keeps up
            async with InMemoryConnector(broker, presence=False) as engine:
                for seq in range(1, 51):
                    body = {"type": "TaskStateEvent", "task_id": f"t{seq}", "task_name": "t",
                            "state": "RUNNING", "duration_ms": 0.0, "error": ""}  # fmt: skip
                    envelope = {"ts": iso(T0), "run_id": "r1", "org_id": "local",
                                "project_id": "default", "source": "s", "seq": seq,
                                "body": body}  # fmt: skip
                    await engine.publish(topic, envelope, qos=1)
            await broker.idle()
            behind = await _noted(history, behind=True)
            [said] = await asyncio.to_thread(history.recorders)
            assert said.recorder == "rec-1"
            assert said.behind_since == behind.behind_since
            assert said.queued >= 10
            history.go.set()
            await recorder.flush(timeout=10)
            caught_up = await _noted(history, behind=False)
            await recorder.stop()
        [said] = history.recorders()
        assert said == caught_up
        assert said.behind_since is None
        assert said.queued == 0
    finally:
        history.go.set()
        history.close()


def test_note_every_must_be_positive(history: History) -> None:
    """A recorder that would note without pause is refused."""
    with pytest.raises(ValueError, match="note_every"):
        Recorder(InMemoryConnector(InMemoryBroker()), history, note_every=0)


def test_a_recorders_latest_note_replaces_the_one_before(history: History) -> None:
    """One row a recorder: its latest word, whichever it was; since: those noted since."""
    history.note_recorder(RecorderNote("r", 100.0, 90.0, 5_000, 3.5, 7, 2**70))
    history.note_recorder(RecorderNote("other", 50.0, None, 0, 0.0, 0, 0))
    assert history.recorders()[0].shed == 2**63 - 1  # a count kept within 64 bits
    history.note_recorder(RecorderNote("r", 110.0, None, 0, 0.0, 7, 9))
    assert history.recorders() == [
        RecorderNote("r", 110.0, None, 0, 0.0, 7, 9),
        RecorderNote("other", 50.0, None, 0, 0.0, 0, 0),
    ]
    assert [n.recorder for n in history.recorders(since=100.0)] == ["r"]
