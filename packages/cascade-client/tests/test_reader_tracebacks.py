"""The reader keeps a failed attempt's traceback with its task, bounded, while it is failed."""

from __future__ import annotations

import time

import msgspec

from cascade.connector_kit.testing import telemetry
from cascade.interfaces import TaskStateEvent
from cascade.reader import ReaderModel

MAX_TRACEBACK_LENGTH = 8 * 1024  # the protocol's bound, as docs/protocol.md states it

T0 = time.time()
TB = 'Traceback (most recent call last):\n  File "f.py", line 1, in load\nValueError: x\n'


def _task(
    state: str, traceback: str | None = None, cancelled: bool | None = None
) -> TaskStateEvent:
    return TaskStateEvent(
        task_id="load-1",
        task_name="load",
        state=state,  # type: ignore[arg-type]
        traceback=msgspec.UNSET if traceback is None else traceback,
        cancelled=msgspec.UNSET if cancelled is None else cancelled,
    )


def _seen(*bodies: TaskStateEvent) -> str | None:
    """The traceback the reader keeps of the task after ``bodies`` (numbered in order)."""
    state = ReaderModel(clock=lambda: T0)
    for seq, body in enumerate(bodies, 1):
        state.apply(telemetry(body, run_id="run-1", seq=seq))
    return state.runs["run-1"].tasks["load-1"].traceback


def test_a_failed_or_retrying_task_keeps_its_traceback_until_its_next_state() -> None:
    """FAILED and RETRYING keep what they carried; the next attempt's RUNNING has none."""
    assert _seen(_task("RUNNING"), _task("FAILED", TB)) == TB
    assert _seen(_task("RETRYING", TB)) == TB
    assert _seen(_task("RETRYING", TB), _task("RUNNING")) is None
    assert _seen(_task("FAILED")) is None  # an engine that sends none


def test_a_traceback_is_kept_bounded_and_only_on_a_failure() -> None:
    """A sender's overlong one is cut as an engine cuts it; one on another state, or on a
    stopped task, is not kept."""
    long = "Traceback (most recent call last):\n" + "x" * (4 * MAX_TRACEBACK_LENGTH)
    kept = _seen(_task("FAILED", long))
    assert kept is not None
    assert len(kept) < MAX_TRACEBACK_LENGTH + 40
    assert f"… ({len(long) - MAX_TRACEBACK_LENGTH} more characters)" in kept
    assert _seen(_task("COMPLETED", TB)) is None
    assert _seen(_task("FAILED", TB, cancelled=True)) is None
