"""Gaps: what a recorder found missing of each source's numbered events, counted as it receives
and kept per source and recorder in the history."""

from __future__ import annotations

from typing import Any

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.history import History, Recorder, SourceGap
from cascade.history.recorder._gaps import RecorderGaps
from cascade.interfaces import Envelope, events_topic, heartbeat_topic
from cascade.reader import SourceGaps

from .messages import T0, heartbeat, iso, lifecycle, task


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _envelope(item: Any) -> Envelope:
    assert isinstance(item.message, Envelope)
    return item.message


def test_a_counter_fed_with_numbers_and_heartbeats() -> None:
    """Skipped numbers and those a heartbeat announces are missed; a late copy fills its hole."""
    clock = _Clock()
    gaps = RecorderGaps(clock)
    for seq in (1, 2, 4):
        gaps.see(_envelope(task("r1", "a-1", "RUNNING", T0, seq=seq, source="e1")), T0)
    gaps.see(_envelope(heartbeat("r1", T0, last_seq=6, source="e1")), T0)
    assert gaps.missed == 3  # 3, 5 and 6
    changes, counts = gaps.changes()
    assert changes == {"e1": SourceGaps(3, T0)}
    gaps.written(counts)
    assert gaps.changes()[0] == {}
    gaps.see(_envelope(task("r1", "a-1", "COMPLETED", T0, seq=3, source="e1")), T0)
    assert gaps.changes()[0] == {"e1": SourceGaps(-1, T0)}
    assert gaps.missed == 2


def test_a_run_is_forgotten_a_minute_after_its_end_and_its_count_is_kept() -> None:
    """An ended run's last changes are carried to the next write after it is forgotten."""
    clock = _Clock()
    gaps = RecorderGaps(clock)
    gaps.see(_envelope(lifecycle("r1", "ENGINE_STARTED", T0, seq=1, source="e1")), T0)
    gaps.see(_envelope(lifecycle("r1", "ENGINE_STOPPED", T0, seq=5, source="e1")), T0)
    gaps.see(_envelope(task("r2", "a-1", "RUNNING", T0, seq=3, source="e2")), T0)
    clock.now = T0 + 61
    gaps.sweep()
    assert gaps.changes()[0] == {"e1": SourceGaps(3, T0 + 61)}  # r1 forgotten, r2 followed
    gaps.see(_envelope(task("r2", "a-1", "COMPLETED", T0, seq=5, source="e2")), T0 + 61)
    changes, counts = gaps.changes()
    assert changes == {"e1": SourceGaps(3, T0 + 61), "e2": SourceGaps(1, T0 + 61)}
    gaps.written(counts)
    clock.now = T0 + 61 + 119  # r2 never ended, quiet for almost two minutes: followed
    gaps.sweep()
    assert gaps.owner("r2") == "e2"
    clock.now = (
        T0 + 61 + 121
    )  # forgotten after two quiet minutes (its heartbeats would be 5 s apart)
    gaps.sweep()
    assert gaps.owner("r2") is None
    assert gaps.changes()[0] == {}
    assert gaps.missed == 4


def test_runs_beyond_the_bound_are_not_followed() -> None:
    """At most ``max_runs`` runs at once; a new run's numbers beyond that are counted aside."""
    gaps = RecorderGaps(_Clock(), max_runs=2)
    for run_id in ("r1", "r2", "r3"):
        gaps.see(_envelope(task(run_id, "a-1", "RUNNING", T0, seq=1)), T0)
    assert gaps.unfollowed == 1


def test_unnumbered_events_count_nothing() -> None:
    """Engines that do not number their events (older ones) leave the counter alone."""
    gaps = RecorderGaps(_Clock())
    gaps.see(_envelope(task("r1", "a-1", "RUNNING", T0)), T0)
    gaps.see(_envelope(heartbeat("r1", T0)), T0)
    assert gaps.changes()[0] == {}


def test_stored_gaps_add_up_per_source_and_recorder(history: History) -> None:
    """Each write adds its change; a negative one takes back; another recorder has its own row."""
    history.store([], gaps={"e1": SourceGaps(5, T0)}, recorder="rec-a")
    history.store([], gaps={"e1": SourceGaps(-2, T0 + 10)}, recorder="rec-a")
    history.store([], gaps={"e1": SourceGaps(1, T0 + 5), "e2": SourceGaps(0, T0)}, recorder="b")
    found = {(g.source, g.recorder): g for g in history.gaps()}
    assert set(found) == {("e1", "rec-a"), ("e1", "b")}
    assert (found["e1", "rec-a"].missed, found["e1", "rec-a"].first_at) == (3, T0)
    assert found["e1", "b"].missed == 1
    assert {g.recorder for g in history.gaps(source="e1", since=T0)} == {"b", "rec-a"}
    assert history.gaps(since=4e9) == []  # none changed after that
    assert history.gaps(source="e2") == []
    assert found["e1", "b"].to_json()["missed"] == 1


def test_gaps_of_a_source_that_is_no_id_are_left_out(history: History) -> None:
    """A source the protocol refuses (over 1,024 bytes) is not stored as a gap's source."""
    history.store([], gaps={"x" * 2000: SourceGaps(4, T0)}, recorder="r")
    assert history.gaps() == []


def test_old_gap_counts_are_pruned(history: History) -> None:
    """Counts not changed since the prune's moment go with the old runs."""
    history.store([], gaps={"e1": SourceGaps(2, T0)}, recorder="r")
    assert history.gaps() != []
    history.prune(before=4e9)
    assert history.gaps() == []


def _numbered(run_id: str, seq: int, source: str = "engine-1") -> dict[str, Any]:
    return {
        "ts": iso(T0 + seq),
        "run_id": run_id,
        "org_id": "local",
        "project_id": "default",
        "source": source,
        "seq": seq,
        "body": {
            "type": "TaskStateEvent",
            "task_id": f"t-{seq}",
            "task_name": "t",
            "state": "RUNNING",
            "duration_ms": 0,
            "error": "",
        },
    }


async def test_a_recorder_counts_and_stores_what_never_came(
    broker: InMemoryBroker, history: History
) -> None:
    """Events 3 and 6..8 of a run never published: the recorder's gaps, stored per source."""
    async with InMemoryConnector(broker, presence=False, source_id="rec") as connector:
        recorder = Recorder(connector, history)
        await recorder.start()
        async with InMemoryConnector(broker, presence=False) as engine:
            for seq in (1, 2, 4, 5):
                await engine.publish(events_topic("local", "default", "r1"), _numbered("r1", seq))
            beat = {**_numbered("r1", 0), "body": {"type": "Heartbeat", "last_seq": 8}}
            del beat["seq"]
            await engine.publish(heartbeat_topic("local", "default", "r1"), beat)
        await broker.idle()
        await recorder.flush(timeout=5)
        assert recorder.stats.gaps == 4
        await recorder.stop()
    [gap] = history.gaps()
    assert (gap.source, gap.recorder, gap.missed) == ("engine-1", "rec", 4)
    assert isinstance(gap, SourceGap)
    [run] = history.runs()
    assert run.missing_events == 4  # the history's own count agrees


def test_a_long_recorder_name_is_kept_cut(history: History) -> None:
    """A client id may be 65,535 bytes; the history keeps 1,024 of it, and the count."""
    history.store([], gaps={"e1": SourceGaps(2, T0)}, recorder="r" * 5000)
    [gap] = history.gaps()
    assert (len(gap.recorder.encode()), gap.missed) == (1024, 2)
    assert gap.recorder.endswith("…[cut]")
