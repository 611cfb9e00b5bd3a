"""A run's tasks picked by their last state and a name glob, in SQL: pages of them, how many
there are, and the few a summary shows (the longest, the first to fail), and the report that
reads them all at once."""

from __future__ import annotations

import fnmatch

import pytest

from cascade.history import History, Received

from .messages import T0, lifecycle, status, task

NAMES = ["load_a", "load_b", "Load_c", "extract", "ex%ract", "ex_ract", "x]y", "x-y", "a\\b", "é1"]
GLOBS = [
    "load_*",
    "Load_*",
    "*",
    "ex?ract",
    "ex%ract",
    "ex_*",
    "[lL]oad_[!b]",
    "x[]]y",
    "x[!]]y",
    "x[-]y",
    "[a-e]*",
    "[z-a]*",
    "[!z-a]*",
    "a\\b",
    "[",
    "load_[ab",
    "é?",
    "*_*",
]


def _store(history: History, names: list[str]) -> None:
    """Run r1: task ``NAME-i`` per name, the i-th taking i+1 seconds; every third fails (at
    T0 + 100 - i: the later ones first), the others complete, the last is still running."""
    batch: list[Received] = [lifecycle("r1", "ENGINE_STARTED", T0)]
    for index, name in enumerate(names):
        task_id = f"t{index:02d}"
        batch.append(task("r1", task_id, "RUNNING", T0 + index, name=name))
        if index == len(names) - 1:
            continue
        failed = index % 3 == 0
        batch.append(
            task(
                "r1",
                task_id,
                "FAILED" if failed else "COMPLETED",
                T0 + 100 - index if failed else T0 + index + 1,
                name=name,
                duration_ms=(index + 1) * 1000.0,
                error=f"ValueError: {index}" if failed else "",
            )
        )
    history.store(batch)


@pytest.mark.parametrize("glob", GLOBS)
def test_a_glob_picks_what_fnmatch_matches(history: History, glob: str) -> None:
    """In SQL, in SQLite and PostgreSQL alike: case-sensitive, LIKE's % and _ as themselves,
    classes, negated classes, an unclosed [ as a character, an empty class matching nothing."""
    _store(history, NAMES)
    expected = sorted(name for name in NAMES if fnmatch.fnmatchcase(name, glob))
    detail = history.run("r1", name_glob=glob)
    assert detail is not None
    assert sorted(t.task_name for t in detail.tasks) == expected
    assert history.count_tasks("r1", name_glob=glob) == len(expected)


def test_states_pick_by_the_last_state_in_any_case(history: History) -> None:
    """A task that ran then failed is failed, not running; the counts stay the run's."""
    _store(history, NAMES)
    detail = history.run("r1", states=["failed"])
    assert detail is not None
    assert [t.task_id for t in detail.tasks] == ["t00", "t03", "t06"]
    assert {t.state for t in detail.tasks} == {"FAILED"}
    assert detail.run.tasks == {"FAILED": 3, "COMPLETED": 6, "RUNNING": 1}
    running = history.run("r1", states=["RUNNING", "skipped"])
    assert running is not None
    assert [t.task_id for t in running.tasks] == ["t09"]
    assert history.count_tasks("r1", states=["Failed", "completed"]) == 9
    assert history.count_tasks("r1") == len(NAMES)
    assert history.count_tasks("nope") == 0


def test_pages_of_picked_tasks_hold_limit_of_them(history: History) -> None:
    """A page of a filter holds ``limit`` picked tasks while there are more, none of the
    others between them, and its cursor goes on from its last."""
    _store(history, NAMES)
    first = history.run("r1", states=["COMPLETED"], name_glob="*", limit=2, counts=False)
    assert first is not None
    assert ([t.task_id for t in first.tasks], first.next_after) == (["t01", "t02"], "t02")
    ids = [t.task_id for t in first.tasks]
    after = first.next_after
    while after is not None:
        page = history.run("r1", states=["COMPLETED"], after=after, limit=2, counts=False)
        assert page is not None
        assert 0 < len(page.tasks) <= 2
        ids += [t.task_id for t in page.tasks]
        after = page.next_after
    assert ids == ["t01", "t02", "t04", "t05", "t07", "t08"]
    both = history.run("r1", states=["failed"], name_glob="load_*", limit=5)
    assert both is not None
    assert ([t.task_name for t in both.tasks], both.next_after) == (["load_a"], None)


def test_run_tasks_are_the_longest_or_the_first(history: History) -> None:
    """The longest finished tasks first; the failures in the order they failed (the later
    ones failed first here), each with its states and error as a page has them."""
    _store(history, NAMES)
    finished = ["COMPLETED", "FAILED", "SKIPPED", "CANCELLED"]
    longest = history.run_tasks("r1", order="longest", limit=3, states=finished)
    assert [(t.task_id, t.duration_ms) for t in longest] == [
        ("t08", 9000.0),
        ("t07", 8000.0),
        ("t06", 7000.0),
    ]
    assert [s.state for s in longest[2].states] == ["RUNNING", "FAILED"]
    failures = history.run_tasks("r1", order="earliest", states=["FAILED"])
    assert [(t.task_id, t.error) for t in failures] == [
        ("t06", "ValueError: 6"),
        ("t03", "ValueError: 3"),
        ("t00", "ValueError: 0"),
    ]
    loads = history.run_tasks("r1", order="earliest", name_glob="load_*")
    assert [t.task_name for t in loads] == ["load_b", "load_a"]  # load_a failed at T0 + 100
    assert history.run_tasks("nope", order="longest") == []


def test_run_tasks_refuses_what_it_cannot_do(history: History) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        history.run_tasks("r1", order="longest", limit=0)
    with pytest.raises(ValueError, match="'longest' or 'earliest'"):
        history.run_tasks("r1", order="slowest")  # type: ignore[arg-type]


def test_a_report_is_the_run_its_first_page_and_its_summary(history: History) -> None:
    """``History.report``: the first page of the tasks the filters pick and the run's counts,
    its slowest finished tasks (5), its first failures, how many tasks the filters pick; one
    read, with what the run lacks empty (no held task, decision, reuse or log)."""
    _store(history, NAMES)
    report = history.report("r1", limit=2, states=["completed"], name_glob="*")
    assert report is not None
    assert ([t.task_id for t in report.detail.tasks], report.detail.next_after) == (
        ["t01", "t02"],
        "t02",
    )
    assert report.detail.run.tasks == {"FAILED": 3, "COMPLETED": 6, "RUNNING": 1}
    assert [t.task_id for t in report.slowest] == ["t08", "t07", "t06", "t05", "t04"]
    assert [t.task_id for t in report.failures] == ["t06", "t03", "t00"]
    assert report.matched == 6
    assert (report.held, report.decisions, report.reused) == ([], [], {})
    assert (report.logs, report.log_batches) == ({}, None)
    whole = history.report("r1", states=["failed", "running"])  # counted from the counts
    assert whole is not None
    assert (whole.matched, len(whole.detail.tasks)) == (4, 4)
    assert history.report("nope") is None
    with pytest.raises(ValueError, match="at least 1"):
        history.report("r1", limit=0)


def test_a_lost_run_says_when_its_engine_went_offline_and_its_clock_stops_there(
    history: History,
) -> None:
    """Lost: ``lost_at`` is when the first offline status after its last event was received,
    and its duration runs to it; a run not lost has none (also in its JSON)."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=2),
            task("r1", "fetch-1", "RUNNING", T0 + 1),
            lifecycle("r2", "ENGINE_STARTED", T0, tasks=1, source="host-2"),
            status("host-1", "offline", 1, T0 + 30),
            status("host-1", "offline", 2, T0 + 90),  # a later death says nothing of this one
        ]
    )
    runs = {run.run_id: run for run in history.runs()}
    assert (runs["r1"].status, runs["r1"].lost_at, runs["r1"].duration) == ("Lost", T0 + 30, 30)
    assert (runs["r2"].status, runs["r2"].lost_at, runs["r2"].duration) == ("Running", None, None)
    detail = history.run("r1")
    assert detail is not None
    assert detail.run.to_json()["lost_at"] == T0 + 30
