"""Engines' answers (run snapshots): a reader takes only those it asked for, from the run's
engine, within what an engine sends."""

from __future__ import annotations

from cascade.connector_kit.testing import received
from cascade.interfaces import (
    Envelope,
    LifecycleEvent,
    Message,
    RunSnapshot,
    SnapshotTask,
    StatusMessage,
    TaskStateEvent,
    events_topic,
    snapshot_topic,
    status_topic,
    telemetry_filter,
)
from cascade.interfaces.summaries import EngineSummary, SummaryRun, TaskTally, summary_messages
from cascade.reader import MAX_ANSWER_TASKS, MAX_SNAPSHOT_PARTS, ReaderModel

TS = "2026-11-23T10:00:00+00:00"


def _event(body: LifecycleEvent | TaskStateEvent, seq: int, run_id: str = "run-1") -> Message:
    envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source="host-1", body=body,
                        seq=seq, ts=TS)  # fmt: skip
    return received(events_topic("o", "p", run_id), envelope)


def _tasks(first: int, count: int) -> list[SnapshotTask]:
    return [
        SnapshotTask(seq=seq, ts=TS, task_id=f"t{seq}", task_name="t", state="RUNNING")
        for seq in range(first, first + count)
    ]


def _answer(run_id: str = "run-1", source: str = "host-1", **fields: object) -> Message:
    body = RunSnapshot(**{"after": 0, "through": 10, "last_seq": 10, **fields})  # type: ignore[arg-type]
    envelope = Envelope(run_id=run_id, org_id="o", project_id="p", source=source, body=body,
                        ts=TS)  # fmt: skip
    return received(snapshot_topic("o", "p", run_id), envelope)


def _joined_late() -> tuple[ReaderModel, list[tuple[str, int]]]:
    """A reader that heard run-1's event 5 first: it asks its engine."""
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    state.apply(_event(TaskStateEvent(task_id="t5", task_name="t", state="RUNNING"), 5))
    return state, asked


def test_an_answer_asked_for_makes_the_run_whole() -> None:
    state, asked = _joined_late()
    assert asked == [("run-1", 0)]
    state.apply(_answer(tasks=_tasks(1, 10)))
    run = state.runs["run-1"]
    assert (len(run.tasks), run.joined_late, state.partial(run)) == (10, False, None)
    assert state.refusals.total == 0


def test_an_answer_about_a_run_nobody_asked_about_costs_nothing() -> None:
    """The forger's answer of thousands of tasks about a run of its own: no run, no tasks;
    counted as another reader's answer, never as a refusal of its source (an answer to
    `cascade why`'s request reaches every reader: no alarm)."""
    state, _ = _joined_late()
    for part in range(1, 4):
        state.apply(_answer(run_id="forged", source="mallory", parts=3, part=part,
                            tasks=_tasks(1, 2_000), through=2_000, last_seq=2_000))  # fmt: skip
    assert "forged" not in state.runs
    assert state.others_answers == 3
    assert state.refusals.total == 0


def test_an_answer_out_of_an_engines_bounds_is_refused() -> None:
    """More parts than MAX_SNAPSHOT_PARTS, tasks numbered outside (after, through], a through
    past last_seq, more tasks than MAX_ANSWER_TASKS, a through 10**15: each refused, and the
    run's tasks and gaps stay as they were."""
    state, _ = _joined_late()
    part, parts = 2_000, MAX_ANSWER_TASKS // 2_000 + 1  # one part more than the bound takes
    through = part * parts
    forged = [
        _answer(parts=MAX_SNAPSHOT_PARTS + 1, tasks=_tasks(1, 3)),
        _answer(tasks=_tasks(9, 5)),  # 11 to 13 are past through (10)
        _answer(through=11, last_seq=10),
        _answer(part=3, parts=2),
        *(
            _answer(parts=parts, part=n, tasks=_tasks(1 + (n - 1) * part, part),
                    through=through, last_seq=through)
            for n in range(1, parts + 1)
        ),
        _answer(through=10**15, last_seq=10**15),
    ]  # fmt: skip
    for message in forged:
        state.apply(message)
    run = state.runs["run-1"]
    assert (run.joined_late, state.oversized) == (True, 0)
    assert len(run.tasks) == MAX_ANSWER_TASKS  # the parts within the bound (t5 among them)
    assert state.refusals.describe("host-1") == ("3 numbers that disagree, 3 seq out of bounds")
    assert state.gaps.missed_in("run-1") < 10**6


def test_an_answer_listing_a_task_beyond_the_bound_is_refused_and_counted() -> None:
    """The run's own engine answers a view that asked (knowing the run from a summary) with a
    task numbered 10**15 beside a real one: refused whole and counted, as the history
    counts it, so that an operator can tell the attack from silence."""
    state = ReaderModel(ask=lambda run_id, after: None)
    state.request_snapshot("run-1", 0, "host-1")
    state.apply(_answer(through=10**15, last_seq=10**15, tasks=[*_tasks(1, 1), *_tasks(10**15, 1)]))
    assert "t1000000000000000" not in state.runs["run-1"].tasks
    assert state.refusals.describe("host-1") == "1 seq out of bounds"
    assert state.runs["run-1"].refused == 1


def test_an_answer_from_another_source_than_the_one_asked_is_refused() -> None:
    """A reader that opens a run it knows from a summary asks its engine: only that engine's
    answer creates the run."""
    state = ReaderModel(ask=lambda run_id, after: None)
    state.request_snapshot("run-9", 0, "host-1")
    state.apply(_answer(run_id="run-9", source="mallory", tasks=_tasks(1, 3)))
    assert "run-9" not in state.runs
    state.apply(_answer(run_id="run-9", source="host-1", tasks=_tasks(1, 3)))
    assert len(state.runs["run-9"].tasks) == 3
    assert state.refusals.describe("mallory") == "1 foreign source"


def test_an_answer_with_a_task_dated_ahead_of_the_clock_is_refused() -> None:
    """A task dated 9999-12-31 inside an answer dated now: refused whole, as an envelope
    stamped so is."""
    state, _ = _joined_late()
    dated = [SnapshotTask(seq=2, ts="9999-12-31T00:00:00+00:00", task_id="t2", task_name="t",
                          state="RUNNING")]  # fmt: skip
    state.apply(_answer(tasks=_tasks(1, 1) + dated))
    assert set(state.runs["run-1"].tasks) == {"t5"}
    assert state.refusals.describe("host-1") == "1 timestamp ahead"


def _summary_listing(*runs: tuple[str, str, str]) -> list[Message]:
    """What host-1 publishes for a summary listing ``runs`` (run id, project, status): the
    runs per org and project, then its own."""
    listed = [
        SummaryRun(
            run_id=run_id,
            org_id="o",
            project_id=project,
            status=status,  # type: ignore[arg-type]
            started=TS,
            tasks=TaskTally(running=1),
            last_seq=4,
        )
        for run_id, project, status in runs
    ]
    summary = EngineSummary(source="host-1", session=1, listed=listed)
    return [received(topic, placed) for topic, placed in summary_messages(summary)]


def test_a_summary_makes_a_view_ask_about_the_live_runs_it_reads_and_never_heard() -> None:
    """A view that joined while a run sent nothing (a long task, no heartbeat): the summary
    that lists it as live makes the view ask its engine, and the answer shows it."""
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    state.telemetry_filters.add(telemetry_filter(project_id="p"))
    state.apply(_event(TaskStateEvent(task_id="t1", task_name="t", state="RUNNING"), 1, "heard"))
    state.apply(received(status_topic("host-1"), StatusMessage(status="online", session=1)))
    listed = [("quiet", "p", "Running"), ("heard", "p", "Running"),
              ("ended", "p", "Succeeded"), ("elsewhere", "q", "Running")]  # fmt: skip
    for message in _summary_listing(*listed):
        state.apply(message)
    # not one it heard, nor an ended one, nor one it does not read; asked again at each message
    # of the summary (its place's, its own), which the asker sends once (its again_after)
    assert set(asked) == {("quiet", 0)}
    state.apply(_answer("quiet", tasks=_tasks(1, 3), planned=5, name="nightly"))
    run = state.runs["quiet"]
    assert (run.name, len(run.tasks), run.total_tasks, state.partial(run)) == (
        "nightly",
        3,
        5,
        None,
    )


def test_a_view_that_reads_no_telemetry_asks_nothing_of_a_summary() -> None:
    asked: list[tuple[str, int]] = []
    state = ReaderModel(ask=lambda run_id, after: asked.append((run_id, after)))
    for message in _summary_listing(("quiet", "p", "Running")):
        state.apply(message)
    assert asked == []
