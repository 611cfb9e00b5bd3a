"""A failed attempt's traceback is kept with its state, bounded; the task has its latest."""

from __future__ import annotations

from cascade.history import History

from .messages import T0, lifecycle, task

MAX_TRACEBACK_LENGTH = 8 * 1024  # the protocol's bound, as docs/protocol.md states it

TB1 = 'Traceback (most recent call last):\n  File "flow.py", line 3, in load\nOSError: down\n'
TB2 = 'Traceback (most recent call last):\n  File "flow.py", line 9, in load\nValueError: row 3\n'


def test_each_failed_attempt_keeps_its_traceback(history: History) -> None:
    """RETRYING and FAILED keep what they carried; other states have none; the task's
    traceback is its latest failed attempt's; the JSON has each where it was sent."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=2),
            task("r1", "load-1", "RUNNING", T0 + 1),
            task("r1", "load-1", "RETRYING", T0 + 2, error="OSError: down", traceback=TB1),
            task("r1", "load-1", "RUNNING", T0 + 3),
            task("r1", "load-1", "FAILED", T0 + 4, error="ValueError: row 3", traceback=TB2),
            task("r1", "old-1", "RUNNING", T0 + 1),
            task("r1", "old-1", "FAILED", T0 + 2, error="KeyError: 'k'"),  # an older engine
        ]
    )
    detail = history.run("r1")
    assert detail is not None
    load, old = detail.tasks
    assert [change.traceback for change in load.states] == [None, TB1, None, TB2]
    assert load.traceback == TB2
    assert load.states[1].to_json()["traceback"] == TB1
    assert "traceback" not in load.states[0].to_json()
    assert old.traceback is None
    assert all("traceback" not in change.to_json() for change in old.states)
    paged = history.run("r1", limit=10)  # a page reads them too
    assert paged is not None
    assert paged.tasks[0].traceback == TB2


def test_a_traceback_is_kept_bounded_and_only_on_a_failure(history: History) -> None:
    """A sender's overlong traceback is cut as an engine cuts it; one on a state that is not
    a failure, or on a stopped task, is not kept."""
    long = "Traceback (most recent call last):\n" + "x" * (3 * MAX_TRACEBACK_LENGTH)
    history.store(
        [
            task("r1", "a-1", "FAILED", T0 + 1, traceback=long),
            task("r1", "b-1", "COMPLETED", T0 + 1, traceback=TB1),
            task("r1", "c-1", "FAILED", T0 + 1, traceback=TB1, cancelled=True),
        ]
    )
    detail = history.run("r1")
    assert detail is not None
    a, b, c = detail.tasks
    assert a.traceback is not None
    assert a.traceback.startswith("Traceback (most recent call last):\n")
    assert f"… ({len(long) - MAX_TRACEBACK_LENGTH} more characters)" in a.traceback
    assert len(a.traceback) < MAX_TRACEBACK_LENGTH + 40
    assert (b.traceback, c.traceback) == (None, None)
    assert c.state == "CANCELLED"
