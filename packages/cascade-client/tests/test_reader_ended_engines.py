"""Engines that ended cleanly fold away into a count a while after their end; engines whose
connection was lost (their will) stay listed."""

from __future__ import annotations

from datetime import datetime, timezone

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, received
from cascade.interfaces import StatusMessage, status_filter, status_topic
from cascade.interfaces.summaries import EngineSummary, RunTally
from cascade.reader import ENDED_FOLD_AFTER, ReaderModel, ended_cleanly


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).timestamp()

    def __call__(self) -> float:
        return self.now


async def test_engines_ended_cleanly_fold_into_a_count_and_lost_ones_stay() -> None:
    clock = Clock()
    model = ReaderModel(clock=clock)
    broker = InMemoryBroker()
    async with InMemoryConnector(broker, presence=False) as reader:
        await reader.subscribe(status_filter(), model.apply)
        for n in range(3):  # a script run three times: a source each
            async with InMemoryConnector(broker, source_id=f"script-{n}"):
                pass
        lost = InMemoryConnector(broker, source_id="lost")
        await lost.connect()
        await lost.crash()
        async with InMemoryConnector(broker, source_id="live"):
            await broker.idle()
            rows = model.engine_rows(offline_max_age=3600)
            scripts = [f"script-{n}" for n in range(3)]
            assert [e.source for e in rows.shown] == ["live", "lost", *scripts]
            assert rows.folded == []  # just ended: still listed
            clock.now += ENDED_FOLD_AFTER + 1  # the statuses are stamped by the wall clock
            rows = model.engine_rows(offline_max_age=3600)
            assert [e.source for e in rows.shown] == ["live", "lost"]
            assert [e.source for e in rows.folded] == [f"script-{n}" for n in range(3)]
            everything = model.engine_rows(offline_max_age=None, fold_ended_after=None)
            assert len(everything.shown) == 5
            assert everything.folded == []
            clock.now += 3600  # beyond the offline age: hidden as before, not folded
            rows = model.engine_rows(offline_max_age=3600)
            assert ([e.source for e in rows.shown], rows.hidden, rows.folded) == (["live"], 4, [])


def test_an_engine_that_ended_with_live_runs_is_no_clean_end() -> None:
    model = ReaderModel()
    shutdown = StatusMessage(status="offline", source="e", session=1, reason="shutdown")
    model.apply(received(status_topic("e"), shutdown, retain=True))
    assert ended_cleanly(model.engines["e"])
    stranded = EngineSummary(source="e", session=1, runs=RunTally(running=1), more_live=1)
    model.apply(received("cascade/summary/e", stranded, retain=True))
    assert not ended_cleanly(model.engines["e"])
