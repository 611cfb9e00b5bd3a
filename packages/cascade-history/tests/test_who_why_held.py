"""What issue 25 added to the messages, kept: who set a constraint and why, what held a task,
a cancelled run; and a run whose engine went offline before its end."""

from __future__ import annotations

from cascade.history import History

from .messages import T0, cleared, constraint, lifecycle, note, status, task

TOPIC = "cascade/control/local/default/task/load_*/pause"
PAUSE_HOLD = {"type": "pause", "scope": "task:load_*", "reason": "maintenance", "issued_by": "al"}


def test_the_audit_says_who_set_a_constraint_and_why(history: History) -> None:
    """A set keeps its reason and writer; a new reason is a change; a clear says what it
    cleared; a writer that says nothing (an older tool) leaves them None."""
    history.store(
        [
            constraint(
                TOPIC,
                "task:load_*",
                "pause",
                T0,
                reason="maintenance",
                issued_by="alice",
                issued_at=T0 - 0.5,
            ),
            constraint(
                TOPIC,
                "task:load_*",
                "pause",
                T0 + 1,
                reason="still",
                issued_by="bob",
                issued_at=T0 + 0.9,
            ),
            cleared(TOPIC, T0 + 2),
            constraint("cascade/control/local/default/global/pause", "global", "pause", T0 + 3),
        ]
    )
    events = [(e.action, e.reason, e.issued_by, e.issued_at) for e in history.audit()]
    assert events == [
        ("set", None, None, None),
        ("cleared", None, None, None),  # an empty payload names no one
        ("set", "still", "bob", T0 + 0.9),
        ("set", "maintenance", "alice", T0 - 0.5),
    ]
    assert history.audit()[2].to_json()["issued_by"] == "bob"
    assert history.audit()[1].scope == "task:load_*"  # what it cleared


def test_a_clear_note_names_who_cleared_and_why(history: History) -> None:
    """A note after a clear (in the same batch or a later one) names its writer; one with no
    recent clear to name, or a second one, is none (a duplicate); text stored bounded."""
    pause = constraint(TOPIC, "task:load_*", "pause", T0, issued_by="alice")
    history.store([pause, cleared(TOPIC, T0 + 1)])
    stored = history.store([note(TOPIC, T0 + 1.5, issued_by="bob", reason="done")])
    assert stored.stored == 1
    assert history.store([note(TOPIC, T0 + 2, issued_by="eve")]).duplicates == 1
    history.store([pause, cleared(TOPIC, T0 + 10), note(TOPIC, T0 + 11, issued_by="x" * 999)])
    history.store([pause, cleared(TOPIC, T0 + 20), note(TOPIC, T0 + 200, issued_by="late")])
    cleared_by = [(e.at, e.issued_by, e.reason) for e in history.audit() if e.action == "cleared"]
    late, long_name, named = cleared_by
    assert late == (T0 + 20, None, None)  # the note came more than a minute after it
    assert named == (T0 + 1, "bob", "done")
    assert long_name[1] is not None
    assert long_name[1].startswith("xxx")
    assert len(long_name[1].encode()) <= 256
    never_set = note("cascade/constraints/global/pause", T0, issued_by="z")
    assert history.store([never_set]).duplicates == 1


def test_an_overlong_writer_name_is_cut(history: History) -> None:
    """issued_by is claimed by any writer: the history keeps at most 256 bytes of it."""
    history.store([constraint(TOPIC, "task:load_*", "pause", T0, issued_by="x" * 5000)])
    (event,) = history.audit()
    assert event.issued_by is not None
    assert len(event.issued_by.encode()) <= 256


def test_what_held_a_task_is_in_its_run(history: History) -> None:
    """A BLOCKED event's held_by is kept with its state; the task says what held it last."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=1),
            task("r1", "load_a-1", "BLOCKED", T0 + 1, held_by=[PAUSE_HOLD]),
            task("r1", "load_a-1", "RUNNING", T0 + 61),
            task("r1", "load_a-1", "COMPLETED", T0 + 62),
        ]
    )
    detail = history.run("r1")
    assert detail is not None
    (load,) = detail.tasks
    assert load.held_by == [PAUSE_HOLD]
    assert load.blocked_s == 60
    assert load.states[0].to_json()["held_by"] == [PAUSE_HOLD]
    assert "held_by" not in load.states[1].to_json()


def test_a_task_that_waited_for_a_worker_is_queued_its_attempt_from_its_start(
    history: History,
) -> None:
    """A BLOCKED event with a queued hold is stored QUEUED, counted in no blocked time; its
    attempt (the one it held back) starts at its RUNNING, when a worker started it."""
    queued = {"type": "queued", "executor": "threads", "workers": 32}
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=1),
            task("r1", "load_a-1", "BLOCKED", T0 + 1, held_by=[queued]),
            task("r1", "load_a-1", "RUNNING", T0 + 3),
            task("r1", "load_a-1", "COMPLETED", T0 + 5, duration_ms=2000.0),
        ]
    )
    detail = history.run("r1")
    assert detail is not None
    (load,) = detail.tasks
    assert [change.state for change in load.states] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert [change.attempt for change in load.states] == [1, 1, 1]
    assert (load.blocked_s, load.started_at, load.duration_ms) == (0.0, T0 + 3, 2000.0)
    (attempt,) = load.attempt_list
    assert (attempt.started_at, attempt.duration) == (T0 + 3, 2.0)


def test_a_cancelled_run_is_cancelled(history: History) -> None:
    """On the wire a cancelled run ends Failed with cancelled: true; the history says Cancelled."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=1),
            lifecycle("r1", "ENGINE_STOPPED", T0 + 1, status="Failed", cancelled=True),
        ]
    )
    assert [run.status for run in history.runs()] == ["Cancelled"]
    assert [run.run_id for run in history.runs(status="cancelled")] == ["r1"]


def test_a_run_whose_engine_went_offline_is_lost_until_it_is_heard_again(
    history: History,
) -> None:
    """Running, then its engine's offline status: Lost (and found by --status lost, not
    running); a later event of the run (the engine came back) makes it Running again."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0, tasks=2),
            task("r1", "fetch-1", "RUNNING", T0 + 1),
            lifecycle("r2", "ENGINE_STARTED", T0, tasks=1, source="host-2"),
            status("host-1", "offline", 1, T0 + 30),
        ]
    )
    by_id = {run.run_id: run.status for run in history.runs()}
    assert by_id == {"r1": "Lost", "r2": "Running"}
    assert [run.run_id for run in history.runs(status="lost")] == ["r1"]
    assert [run.run_id for run in history.runs(status="running")] == ["r2"]
    detail = history.run("r1")
    assert detail is not None
    assert detail.run.status == "Lost"
    history.store([task("r1", "fetch-1", "COMPLETED", T0 + 40)])
    assert {run.run_id: run.status for run in history.runs()}["r1"] == "Running"
