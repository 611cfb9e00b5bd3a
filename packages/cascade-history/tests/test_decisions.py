"""Holds and decisions in the history: a held task's states stored as readers show them
(``HELD``), each attempt with its error, traceback and duration, the decision each event came
of; the engines' answers to decisions in the audit, once per request, from the run's engine
only."""

from __future__ import annotations

from typing import Any

import pytest

from cascade.history import History
from cascade.interfaces import Message

from .messages import T0, decision_reply, lifecycle, task

RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def _hold(attempt: int, deadline: float) -> list[dict[str, Any]]:
    return [{"type": "decision", "attempt": attempt, "deadline": deadline, "default": "fail"}]


def _alice(attempt: int, at: float) -> dict[str, Any]:
    return {"decision": "retry", "attempt": attempt, "by": "alice", "reason": "API back",
            "at": at, "id": "req-1"}  # fmt: skip


@pytest.fixture
def held_twice(history: History) -> None:
    """``load-1`` fails, is held, retried by alice, fails again, is held, and completed by the
    hold's deadline... by bob (a complete with a result)."""
    history.store(
        [
            lifecycle(RUN, "ENGINE_STARTED", T0, seq=1),
            task(RUN, "load-1", "RUNNING", T0 + 1, seq=2),
            task(RUN, "load-1", "BLOCKED", T0 + 3, seq=3, error="ValueError: API down",
                 traceback="Traceback (most recent call last):\n  ValueError: API down\n",
                 held_by=_hold(1, T0 + 3 + 86400), duration_ms=2000),
            task(RUN, "load-1", "RUNNING", T0 + 60, seq=4, decided=_alice(1, T0 + 59)),
            task(RUN, "load-1", "BLOCKED", T0 + 65, seq=5, error="KeyError: 'rows'",
                 traceback="Traceback:\n  KeyError: 'rows'\n", held_by=_hold(2, T0 + 86465)),
            task(RUN, "load-1", "COMPLETED", T0 + 90, seq=6,
                 decided={"decision": "complete", "attempt": 2, "by": "bob", "at": T0 + 90}),
        ]
    )  # fmt: skip


@pytest.mark.usefixtures("held_twice")
def test_a_held_task_is_stored_held_with_each_attempt_and_decision(history: History) -> None:
    """The states are as readers show them (HELD, not the wire's BLOCKED), the held attempt
    numbered as the one that failed; each attempt has its start, end, error, traceback, hold
    and the decision on it."""
    detail = history.run(RUN)
    assert detail is not None
    (load,) = detail.tasks
    assert [(c.state, c.attempt) for c in load.states] == [
        ("RUNNING", 1), ("HELD", 1), ("RUNNING", 2), ("HELD", 2), ("COMPLETED", 2),
    ]  # fmt: skip
    assert detail.run.tasks == {"COMPLETED": 1}
    assert load.blocked_s == 0.0  # a hold is no constraint holding it back
    first, second = load.attempt_list
    assert (first.number, first.state, first.started_at, first.ended_at, first.duration) == (
        1, "HELD", T0 + 1, T0 + 3, 2.0,
    )  # fmt: skip
    assert first.error == "ValueError: API down"
    assert first.traceback is not None
    assert "ValueError: API down" in first.traceback
    assert first.hold == _hold(1, T0 + 3 + 86400)[0]
    assert first.held_at == T0 + 3
    assert first.decided == _alice(1, T0 + 59)
    assert (second.number, second.state, second.started_at, second.ended_at) == (
        2, "COMPLETED", T0 + 60, T0 + 65,
    )  # fmt: skip
    assert second.error == "KeyError: 'rows'"
    assert second.decided is not None
    assert second.decided["by"] == "bob"
    assert [d["decision"] for d in load.decisions] == ["retry", "complete"]
    as_json = load.to_json()
    assert as_json["states"][2]["decided"] == _alice(1, T0 + 59)
    assert [a["state"] for a in as_json["attempt_list"]] == ["HELD", "COMPLETED"]
    assert as_json["attempt_list"][0]["duration"] == 2.0


@pytest.mark.usefixtures("held_twice")
def test_held_is_a_state_tasks_are_filtered_and_counted_by(history: History) -> None:
    """A run whose task is held now counts it HELD, and the task filters know the state."""
    history.store([task(RUN, "side-1", "BLOCKED", T0 + 95, seq=7, error="OSError",
                        held_by=_hold(1, T0 + 1000))])  # fmt: skip
    detail = history.run(RUN)
    assert detail is not None
    assert detail.run.tasks == {"COMPLETED": 1, "HELD": 1}
    held = history.run_tasks(RUN, order="earliest", states=["HELD"])
    assert [t.task_id for t in held] == ["side-1"]


def test_a_blocked_task_held_by_a_constraint_stays_blocked(history: History) -> None:
    """Only a hold of type decision makes a task HELD; a pause's BLOCKED keeps no traceback."""
    history.store(
        [
            lifecycle(RUN, "ENGINE_STARTED", T0, seq=1),
            task(RUN, "load-1", "BLOCKED", T0 + 1, seq=2, traceback="not a failure's",
                 held_by=[{"type": "pause", "scope": "global"}]),
        ]
    )  # fmt: skip
    detail = history.run(RUN)
    assert detail is not None
    (change,) = detail.tasks[0].states
    assert (change.state, change.attempt, change.traceback) == ("BLOCKED", 1, None)


@pytest.fixture
def known_run(history: History) -> None:
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0, seq=1, source="host-1")])


@pytest.mark.usefixtures("known_run")
def test_answers_to_decisions_are_audit_rows_once_per_request(history: History) -> None:
    """Applied and refused answers are both rows (who, why, which attempt, outcome; the
    refused one says who had decided); a copy of one is a duplicate; ``History.decisions``
    lists a run's in the order received."""
    applied = decision_reply("req-1", RUN, T0 + 10, "retry", "applied", task_id="load-1",
                             task_name="load", attempt=1, decided=_alice(1, T0 + 10),
                             issued_by="alice", reason="API back")  # fmt: skip
    refused = decision_reply("req-2", RUN, T0 + 11, "skip", "already_decided", task_id="load-1",
                             task_name="load", attempt=1, decided=_alice(1, T0 + 10),
                             issued_by="bob", reason="skip it today")  # fmt: skip
    stored = history.store([applied, refused, applied])
    assert (stored.stored, stored.duplicates) == (2, 1)
    records = history.decisions(RUN)
    assert [(r.request_id, r.decision, r.outcome, r.issued_by, r.attempt) for r in records] == [
        ("req-1", "retry", "applied", "alice", 1),
        ("req-2", "skip", "already_decided", "bob", 1),
    ]
    assert records[0].applied
    assert not records[1].applied
    assert records[1].decided is not None
    assert records[1].decided["by"] == "alice"
    audit = history.audit()
    assert [(e.action, e.type, e.issued_by) for e in audit] == [
        ("decided", "skip", "bob"), ("decided", "retry", "alice"),
    ]  # fmt: skip
    event = audit[0]
    assert event.scope == f"run:{RUN}/task:load-1/attempt:1"
    assert (event.reason, event.run_id, event.source) == ("skip it today", RUN, "host-1")
    assert event.decided is not None
    assert event.decided["outcome"] == "already_decided"
    assert event.to_json()["decided"]["decided"]["by"] == "alice"


@pytest.mark.usefixtures("known_run")
def test_an_answer_from_another_source_or_for_an_unknown_run_is_rejected(
    history: History,
) -> None:
    """Only the run's engine answers for it: another source's answer, or one for a run the
    history does not know, is rejected and stored nowhere."""
    foreign = decision_reply("req-1", RUN, T0 + 1, "retry", "applied", source="mallory")
    unknown = decision_reply("req-2", "f" * 32, T0 + 1, "retry", "applied")
    stored = history.store([foreign, unknown])
    assert (stored.stored, stored.rejected) == (0, 2)
    assert history.decisions(RUN) == []
    assert history.audit() == []


def test_a_decision_answer_on_the_reply_topic_is_read_as_one() -> None:
    """The recorder's decoding tells a decision's answer from a cancel's by its decision: it
    is never taken for a cancel."""
    from cascade.history import decode_message
    from cascade.interfaces.commands import DecisionReply

    payload = {"id": "req-1", "run_id": RUN, "source": "host-1", "decision": "fail",
               "outcome": "not_held", "task_id": "load-1"}  # fmt: skip
    received = decode_message(Message("cascade/reply/local/req-1/host-1", payload))
    assert received is not None
    assert isinstance(received.message, DecisionReply)
    assert received.message.outcome == "not_held"


@pytest.mark.usefixtures("known_run")
def test_a_dashboards_row_vouches_for_the_decision_it_allowed(history: History) -> None:
    """A team's dashboard's allowed row of alice's retry of load-1 at attempt 1 vouches for the
    engine's answer naming her (bob's, claimed, is not vouched for)."""
    history.record_access(who="alice", via="oidc", action="retry",
                          target=f"run:{RUN}/task:load-1/attempt:1", outcome="allowed",
                          reason="applied", at=T0 + 10.5)  # fmt: skip
    history.store(
        [
            decision_reply("req-1", RUN, T0 + 10, "retry", "applied", task_id="load-1",
                           attempt=1, issued_by="alice"),
            decision_reply("req-2", RUN, T0 + 11, "retry", "already_decided",
                           task_id="load-1", attempt=1, issued_by="bob"),
        ]
    )  # fmt: skip
    vouched = {e.issued_by: e.vouched for e in history.audit() if e.action == "decided"}
    assert vouched == {"alice": "oidc", "bob": None}


def test_a_gate_is_stored_held_with_its_prompt_and_its_decisions_audited(
    history: History,
) -> None:
    """A gate is held with no attempt run before: its one attempt keeps the hold as sent, its
    prompt included (no column of its own: the hold is JSON); the refused retry and the
    approval are audit rows like any decision's."""
    gate = {"type": "decision", "attempt": 1, "deadline": T0 + 3600, "default": "fail",
            "kind": "approval", "prompt": "Deploy v1.2 to production?"}  # fmt: skip
    approved = {"decision": "complete", "attempt": 1, "by": "alice", "at": T0 + 30, "id": "req-2"}
    history.store(
        [
            lifecycle(RUN, "ENGINE_STARTED", T0, seq=1),
            task(RUN, "gate-1", "BLOCKED", T0 + 1, seq=2, held_by=[gate]),
            decision_reply("req-1", RUN, T0 + 20, "retry", "not_retryable", task_id="gate-1",
                           task_name="gate", attempt=1, issued_by="bob"),
            decision_reply("req-2", RUN, T0 + 30, "complete", "applied", task_id="gate-1",
                           task_name="gate", attempt=1, decided=approved, issued_by="alice"),
            task(RUN, "gate-1", "COMPLETED", T0 + 30, seq=3, decided=approved),
        ]
    )  # fmt: skip
    detail = history.run(RUN)
    assert detail is not None
    (held,) = detail.tasks
    assert [(c.state, c.attempt) for c in held.states] == [("HELD", 1), ("COMPLETED", 1)]
    (attempt,) = held.attempt_list
    assert attempt.hold == gate
    assert (attempt.state, attempt.error, attempt.decided) == ("COMPLETED", "", approved)
    assert held.attempts == 0  # it never started
    records = history.decisions(RUN)
    assert [(r.decision, r.outcome, r.issued_by) for r in records] == [
        ("retry", "not_retryable", "bob"),
        ("complete", "applied", "alice"),
    ]
    assert [(e.type, e.issued_by) for e in history.audit()] == [
        ("complete", "alice"),
        ("retry", "bob"),
    ]


@pytest.mark.usefixtures("known_run")
def test_a_run_lists_the_decisions_that_made_it(history: History) -> None:
    """Every list of runs carries the decisions its engine applied, by kind and person, in the
    order first applied (a refused one is none of them), and says them beside the status; the
    export has them as a column."""
    from cascade.history import EXPORT_FORMATS, RUN_COLUMNS, export_lines

    def reply(n: int, decision: str, outcome: str, by: str) -> Any:
        return decision_reply(f"req-{n}", RUN, T0 + n, decision, outcome, task_id=f"t-{n}",
                              attempt=1, issued_by=by)  # fmt: skip

    history.store([
        reply(1, "skip", "applied", "ops-1"),
        reply(2, "complete", "applied", "ops-2"),
        reply(3, "skip", "already_decided", "ops-3"),
        reply(4, "skip", "applied", "ops-1"),
        lifecycle(RUN, "ENGINE_STOPPED", T0 + 9, seq=2, status="Succeeded"),
    ])  # fmt: skip
    (run,) = history.runs()
    assert [d.to_json() for d in run.decisions] == [
        {"decision": "skip", "by": "ops-1", "count": 2},
        {"decision": "complete", "by": "ops-2", "count": 1},
    ]
    assert run.status_said == "Succeeded · 2 skipped by ops-1, 1 completed by ops-2"
    detail = history.run(RUN)
    assert detail is not None
    assert detail.run.decisions == run.decisions
    assert "decisions" in RUN_COLUMNS
    assert "csv" in EXPORT_FORMATS
    header, line = export_lines("csv", RUN_COLUMNS, [run.to_json()])
    assert header.rstrip("\n").split(",")[-2:] == ["decisions", "line"]
    assert '""decision"": ""skip"", ""by"": ""ops-1"", ""count"": 2' in line
