"""The header's recorders: what the recorders noted in the history, those behind and fresh
shown, read again every few seconds (``DashboardHub.follow_recorders``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub
from cascade.history import History, RecorderNote

NOW = 1_800_000_000.0


def _note(name: str, at: float, behind: bool) -> RecorderNote:
    return RecorderNote(name, at, at - 5 if behind else None, 900, 2.0, 3, 4)


def test_the_header_lists_the_recorders_behind_that_noted_lately() -> None:
    """A recorder behind is listed; one that keeps up, or whose note is stale, is not; the
    version moves when the list changes, and only then."""
    model = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False)).model
    stale = NOW - 3600  # a recorder stopped an hour ago: its last word is no news
    notes = [_note("a", NOW, True), _note("b", NOW, False), _note("c", stale, True)]
    before = model.version
    assert model.note_recorders(notes, NOW)
    assert [r["recorder"] for r in model.header()["recorders"]] == ["a"]
    assert model.header()["recorders"][0]["queued"] == 900
    assert model.version == before + 1
    assert not model.note_recorders(notes, NOW)
    assert model.note_recorders([_note("a", NOW, False)], NOW)
    assert model.header()["recorders"] == []


async def test_the_hub_reads_the_history_notes(tmp_path: Path) -> None:
    """follow_recorders reads what the history holds into the model as it changes."""
    url = f"sqlite:///{tmp_path}/h.db"
    with History(url, mode="write") as history:
        hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False))
        hub.model.clock = lambda: NOW
        history.note_recorder(_note("rec", NOW, True))
        seen = hub.model.version
        follow = asyncio.create_task(hub.follow_recorders(lambda: history, every=0.01))
        try:
            await hub.wait_change(seen, timeout=10)
            assert [r["recorder"] for r in hub.model.recorders] == ["rec"]
            seen = hub.model.version
            history.note_recorder(_note("rec", NOW, False))
            await hub.wait_change(seen, timeout=10)
            assert hub.model.recorders == []
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
