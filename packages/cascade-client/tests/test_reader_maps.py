"""The reader keeps a map's size, as its engine said it on the map's RUNNING, through its
later states: a view of a live map tells how many items it has before it hears of them all."""

from __future__ import annotations

import time

import msgspec

from cascade.interfaces import TaskStateEvent
from cascade.interfaces.testing import telemetry
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
