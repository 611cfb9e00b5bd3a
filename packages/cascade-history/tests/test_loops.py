"""A run's loops folded: a loop's iterations (``<loop>@<n>``) counted by state under the
loop's own task with its latest one, the report's first page showing the loop and not its
iterations, a loop's row opened, and an ``@`` in a task's name that makes no iteration."""

from __future__ import annotations

from cascade.history import History, LoopIterations

from .messages import T0, lifecycle, task

ITERATIONS = 1_000  # counter-2@2 .. counter-2@1001


def _looping_run(history: History, *, ended: bool = True) -> None:
    """A run whose ``counter-2`` loops ``ITERATIONS`` times, its last iteration failing when
    ``ended`` (running otherwise); ``mail@home-3`` and ``mail@4`` have an ``@`` but are no
    iterations (no task ``mail`` in the run)."""
    batch = [
        lifecycle("r1", "ENGINE_STARTED", T0, tasks=3),
        task("r1", "counter-2", "RUNNING", T0),
        task("r1", "mail@home-3", "COMPLETED", T0, name="mail@home"),
        task("r1", "mail@4", "COMPLETED", T0, name="mail"),
    ]
    last = ITERATIONS + 1
    for number in range(2, last + 1):
        iteration = f"counter-2@{number}"
        at = T0 + number / (ITERATIONS + 2)
        batch.append(task("r1", iteration, "RUNNING", at, name="counter"))
        if number < last:
            batch.append(task("r1", iteration, "COMPLETED", at, name="counter", duration_ms=1))
        elif ended:
            batch.append(task("r1", iteration, "FAILED", T0 + 2, name="counter", error="bad"))
    if ended:
        batch += [
            task("r1", "counter-2", "FAILED", T0 + 2, error="bad"),
            lifecycle("r1", "ENGINE_STOPPED", T0 + 3, status="Failed"),
        ]
    history.store(batch)


def test_a_loop_of_1000_iterations_is_one_folded_row(history: History) -> None:
    _looping_run(history)
    report = history.report("r1", limit=20)
    assert report is not None
    counts = {"COMPLETED": ITERATIONS - 1, "FAILED": 1}
    latest = f"counter-2@{ITERATIONS + 1}"
    assert report.loops == [
        LoopIterations("counter-2", "counter", ITERATIONS, counts, latest, "FAILED")
    ]
    assert report.loops[0].number == ITERATIONS + 1
    listed = sorted(t.task_id for t in report.detail.tasks)
    assert listed == ["counter-2", "mail@4", "mail@home-3"]
    assert (report.matched, report.folded_iterations, report.folded) == (3, ITERATIONS, 0)
    assert report.maps == []
    assert report.loops[0].to_json() == {
        "task_id": "counter-2",
        "task_name": "counter",
        "iterations": ITERATIONS,
        "counts": counts,
        "latest": latest,
        "latest_state": "FAILED",
    }
    assert history.loops("r1") == report.loops


def test_a_running_loop_shows_its_latest_iteration(history: History) -> None:
    _looping_run(history, ended=False)
    [loop] = history.loops("r1")
    assert (loop.latest, loop.latest_state) == (f"counter-2@{ITERATIONS + 1}", "RUNNING")
    assert loop.counts == {"COMPLETED": ITERATIONS - 1, "RUNNING": 1}


def test_a_loops_iterations_are_listed_when_its_row_is_opened(history: History) -> None:
    _looping_run(history)
    opened = history.report("r1", limit=5, item_of="counter-2")
    assert opened is not None
    assert sorted(t.task_id for t in opened.detail.tasks) == [
        "counter-2@10",
        "counter-2@100",
        "counter-2@1000",
        "counter-2@1001",
        "counter-2@101",
    ]  # the first by task id, as every page
    assert opened.matched == ITERATIONS
    failed = history.report("r1", limit=5, item_of="counter-2", states=["failed"])
    assert failed is not None
    assert [t.task_id for t in failed.detail.tasks] == [f"counter-2@{ITERATIONS + 1}"]
    every = history.run("r1", items=True)
    assert every is not None
    assert len(every.tasks) == ITERATIONS + 3
    unfolded = history.run("r1", items=False)
    assert unfolded is not None
    assert len(unfolded.tasks) == 3


def test_a_filter_picks_iterations_as_any_task(history: History) -> None:
    _looping_run(history)
    failed = history.report("r1", limit=20, states=["failed"])
    assert failed is not None
    assert sorted(t.task_id for t in failed.detail.tasks) == [
        "counter-2",
        f"counter-2@{ITERATIONS + 1}",
    ]
    assert failed.folded_iterations == 0


def test_a_run_without_loops_has_none(history: History) -> None:
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=1),
            task("r1", "mail@2", "COMPLETED", T0, name="mail"),
            lifecycle("r1", "ENGINE_STOPPED", T0 + 1, status="Succeeded"),
        ]
    )
    report = history.report("r1")
    assert report is not None
    assert (report.loops, report.folded_iterations) == ([], 0)
    assert [t.task_id for t in report.detail.tasks] == ["mail@2"]
