"""A run's tasks page by page: keyset on the task id, each page bounded, together every task."""

from __future__ import annotations

import pytest

from cascade.history import TASKS_PAGE, History

from .messages import T0, lifecycle, task


def _run_of(history: History, tasks: int) -> None:
    batch = [lifecycle("r1", "ENGINE_STARTED", T0)]
    for index in range(tasks):
        # ids not in the order the tasks appear: pages go by id, a page by appearance
        task_id = f"t{(index * 7) % tasks:03d}-1"
        batch.append(task("r1", task_id, "RUNNING", T0 + index))
        batch.append(task("r1", task_id, "COMPLETED", T0 + index + 0.5, duration_ms=500))
    history.store(batch)


def test_pages_hold_every_task_once_and_say_when_they_end(history: History) -> None:
    _run_of(history, 10)
    whole = history.run("r1")
    assert whole is not None
    assert whole.next_after is None
    pages = list(history.run_pages("r1", size=4))
    assert [len(page.tasks) for page in pages] == [4, 4, 2]
    assert [page.next_after is None for page in pages] == [False, False, True]
    paged = [t for page in pages for t in page.tasks]
    assert sorted(t.task_id for t in paged) == sorted(t.task_id for t in whole.tasks)
    assert {t.task_id: t for t in paged} == {t.task_id: t for t in whole.tasks}
    for page in pages:  # the run itself on every page
        assert page.run == whole.run
    first = pages[0]
    assert max(t.task_id for t in first.tasks) == first.next_after


def test_a_page_is_in_the_order_its_tasks_appeared(history: History) -> None:
    _run_of(history, 10)
    page = history.run("r1", limit=10)
    assert page is not None
    starts = [t.started_at or 0.0 for t in page.tasks]
    assert starts == sorted(starts)


def test_a_cursor_past_the_end_is_an_empty_page(history: History) -> None:
    _run_of(history, 3)
    page = history.run("r1", after="zzz", limit=5)
    assert page is not None
    assert (page.tasks, page.next_after) == ([], None)
    assert history.run("nope", limit=5) is None
    assert list(history.run_pages("nope")) == []


def test_a_limit_below_one_is_refused(history: History) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        history.run("r1", limit=0)


def test_the_page_size_is_documented() -> None:
    assert TASKS_PAGE == 500


def test_a_page_without_counts_skips_only_them(history: History) -> None:
    _run_of(history, 6)
    counted = history.run("r1", after="t002-1", limit=2)
    bare = history.run("r1", after="t002-1", limit=2, counts=False)
    assert counted is not None
    assert bare is not None
    assert counted.run.tasks == {"COMPLETED": 6}
    assert (bare.run.tasks, bare.run.missing_events) == ({}, None)
    assert bare.tasks == counted.tasks
    assert bare.next_after == counted.next_after


def test_a_page_keeps_a_tasks_last_states_and_counts_the_others(history: History) -> None:
    """A task that changed state far more often than STATES_KEPT: a page lists its last ones,
    says how many it left out, and still counts every attempt and its first start."""
    from cascade.history import STATES_KEPT

    changes = STATES_KEPT + 51  # running, retrying, running, ... and completed last
    batch = [lifecycle("r1", "ENGINE_STARTED", T0)]
    for index in range(changes - 1):
        state = "RUNNING" if index % 2 == 0 else "RETRYING"
        batch.append(task("r1", "busy-1", state, T0 + 1 + index))
    batch.append(task("r1", "busy-1", "COMPLETED", T0 + changes))
    batch.append(task("r1", "calm-1", "RUNNING", T0 + 2))
    history.store(batch)
    whole = history.run("r1")
    page = history.run("r1", limit=10)
    assert whole is not None
    assert page is not None
    full = {t.task_id: t for t in whole.tasks}
    paged = {t.task_id: t for t in page.tasks}
    busy = paged["busy-1"]
    assert len(busy.states) == STATES_KEPT
    assert busy.states_omitted == changes - STATES_KEPT
    assert busy.states == full["busy-1"].states[-STATES_KEPT:]
    assert (busy.attempts, busy.started_at, busy.state) == (
        full["busy-1"].attempts,
        full["busy-1"].started_at,
        "COMPLETED",
    )
    assert busy.to_json()["states_omitted"] == changes - STATES_KEPT
    assert paged["calm-1"] == full["calm-1"]
    assert "states_omitted" not in paged["calm-1"].to_json()
