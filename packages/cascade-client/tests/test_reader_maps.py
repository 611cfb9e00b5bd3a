"""The reader keeps a map's size, as its engine said it on the map's RUNNING, through its
later states: a view of a live map tells how many items it has before it hears of them all;
a reader that joined late learns it from the engine's snapshot."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import msgspec

from cascade.connector_kit.testing import telemetry
from cascade.interfaces import RunSnapshot, SnapshotTask, TaskStateEvent
from cascade.reader import ReaderModel

T0 = time.time()


def _map(state: str, items: int | None = None) -> TaskStateEvent:
    return TaskStateEvent(
        task_id="transform-2",
        task_name="transform",
        state=state,  # type: ignore[arg-type]
        items=msgspec.UNSET if items is None else items,
    )


def _items(*bodies: TaskStateEvent) -> int | None:
    """The map's size the reader keeps after ``bodies`` (numbered in order)."""
    state = ReaderModel(clock=lambda: T0)
    for seq, body in enumerate(bodies, 1):
        state.apply(telemetry(body, run_id="run-1", seq=seq))
    return state.runs["run-1"].tasks["transform-2"].items


def test_a_maps_size_is_kept_from_its_running_through_its_later_states() -> None:
    assert _items(_map("RUNNING", 10_000)) == 10_000
    assert _items(_map("RUNNING", 10_000), _map("COMPLETED")) == 10_000
    assert _items(_map("RUNNING")) is None  # not a map, or an engine before items


def _joined_mid_map(map_state: str) -> int | None:
    """The map's size a reader knows that heard item 3's start first (event 9), then the
    engine's answer listing the map's task as ``map_state`` with its ``items``."""
    state = ReaderModel(clock=lambda: T0, ask=lambda run_id, after: None)
    item = TaskStateEvent(task_id="transform-2[3]", task_name="transform", state="RUNNING")
    state.apply(telemetry(item, run_id="run-1", seq=9))
    ts = datetime.fromtimestamp(T0, timezone.utc).isoformat()
    entry = SnapshotTask(seq=2, ts=ts, task_id="transform-2", task_name="transform",
                         state=map_state, items=4)  # type: ignore[arg-type]  # fmt: skip
    answer = RunSnapshot(after=0, through=9, last_seq=9, tasks=[entry])
    state.apply(telemetry(answer, run_id="run-1"))
    run = state.runs["run-1"]
    assert not run.joined_late  # the answer was taken
    return run.tasks["transform-2"].items


def test_a_reader_that_joined_late_knows_a_maps_size_from_the_snapshot_alone() -> None:
    assert _joined_mid_map("RUNNING") == 4
    assert _joined_mid_map("COMPLETED") == 4  # the map ended before the reader joined
