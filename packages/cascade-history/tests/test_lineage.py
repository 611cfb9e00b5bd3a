"""A run's name and origin, the runs that rerun it, a reused task's run, and the audit's row
of a run a start request started: as the run's ENGINE_STARTED and COMPLETED events said."""

from __future__ import annotations

from typing import Any

from cascade.history import History, RunLink

from .messages import T0, lifecycle, task

_ORIGIN: dict[str, Any] = {
    "workflow": "nightly",
    "params": {"day": "2026-11-20", "n": 5},
    "request_id": "req-1",
    "issued_by": "alice",
    "reason": "the nightly load",
    "issued_at": T0 - 1,
}


def _first(history: History) -> None:
    """``run-1``: started by a request, ``transform`` failed."""
    history.store(
        [
            lifecycle(
                "run-1", "ENGINE_STARTED", T0, seq=1, tasks=2, name="nightly", origin=_ORIGIN
            ),
            task("run-1", "extract-1", "COMPLETED", T0 + 1, seq=2),
            task("run-1", "transform-1", "FAILED", T0 + 2, seq=3, error="E: x"),
            lifecycle("run-1", "ENGINE_STOPPED", T0 + 3, seq=4, status="Failed"),
        ]
    )


def _rerun(history: History, run_id: str, of: str, at: float, status: str) -> None:
    origin = {**_ORIGIN, "request_id": f"req-{run_id}", "rerun_of": of, "root_run": "run-1"}
    history.store(
        [
            lifecycle(run_id, "ENGINE_STARTED", at, seq=1, name="nightly", origin=origin),
            task(run_id, "extract-1", "COMPLETED", at + 1, seq=2, reused_from="run-1"),
            task(run_id, "transform-1", "RUNNING", at + 1, seq=3),
            task(run_id, "transform-1", "COMPLETED", at + 2, seq=4),
            lifecycle(run_id, "ENGINE_STOPPED", at + 3, seq=5, status=status),
        ]
    )


def test_a_runs_name_and_origin_are_its_starts(history: History) -> None:
    """The name, workflow, params and request its ENGINE_STARTED said; a run that said none
    has none, and filtering by name finds only the named runs."""
    _first(history)
    history.store([lifecycle("plain", "ENGINE_STARTED", T0 + 10)])
    detail = history.run("run-1")
    assert detail is not None
    run = detail.run
    assert (run.name, run.workflow, run.root_run) == ("nightly", "nightly", None)
    assert run.origin == _ORIGIN
    assert run.to_json()["origin"]["params"] == {"day": "2026-11-20", "n": 5}
    assert (run.rerun_of, run.replaced_by) == (None, [])
    [plain] = history.runs(source="host-1", since=None, limit=1)
    assert (plain.run_id, plain.name, plain.origin) == ("plain", None, None)
    assert [r.run_id for r in history.runs(name="nightly")] == ["run-1"]
    assert history.runs(name="nightl") == []


def test_a_rerun_links_both_ways_and_its_reused_tasks_say_from_where(history: History) -> None:
    """The rerun says which run it reruns and how that one ended; the old run lists the
    reruns with how each ended; the reused task names the run its result came from."""
    _first(history)
    _rerun(history, "run-2", "run-1", T0 + 60, "Failed")
    _rerun(history, "run-3", "run-2", T0 + 120, "Succeeded")
    old = history.run("run-1")
    assert old is not None
    assert old.run.replaced_by == [RunLink("run-2", "Failed", "nightly")]
    second = history.run("run-2")
    assert second is not None
    assert second.run.rerun_of == RunLink("run-1", "Failed", "nightly")
    assert second.run.replaced_by == [RunLink("run-3", "Succeeded", "nightly")]
    assert second.run.to_json()["rerun_of"] == {
        "run_id": "run-1", "status": "Failed", "name": "nightly", "reused": None
    }  # fmt: skip
    tasks = {t.task_name: t for t in second.tasks}
    assert tasks["extract"].reused_from == "run-1"
    assert tasks["extract"].to_json()["reused_from"] == "run-1"
    assert tasks["transform"].reused_from is None
    assert "reused_from" not in tasks["transform"].to_json()
    line = [run.run_id for run in history.lineage("run-3")]
    assert line == ["run-1", "run-2", "run-3"]
    assert [run.run_id for run in history.lineage("run-1")] == line
    assert history.lineage("nobody") == []
    assert history.lineage("run-1", among=[("other-org", None)]) == []


def test_each_run_of_a_line_lists_the_line_with_each_runs_outcome_and_reuse(
    history: History,
) -> None:
    """A first run, its rerun and the rerun's rerun: each of the three lists the line, oldest
    first, each run's status and the results it reused; a run never rerun has no line, nor
    does a run of another project under the same root's id."""
    _first(history)
    _rerun(history, "run-2", "run-1", T0 + 60, "Failed")
    _rerun(history, "run-3", "run-2", T0 + 120, "Succeeded")
    history.store([lifecycle("alone", "ENGINE_STARTED", T0 + 200)])
    line = [
        RunLink("run-1", "Failed", "nightly", 0),
        RunLink("run-2", "Failed", "nightly", 1),
        RunLink("run-3", "Succeeded", "nightly", 1),
    ]
    listed = {run.run_id: run.line for run in history.runs()}
    assert listed == {"alone": [], "run-3": line, "run-2": line, "run-1": line}
    detail = history.run("run-2")
    assert detail is not None
    assert detail.run.line == line
    assert detail.run.to_json()["line"][2] == {
        "run_id": "run-3", "status": "Succeeded", "name": "nightly", "reused": 1
    }  # fmt: skip


def test_a_rerun_of_a_run_the_history_lacks_says_so(history: History) -> None:
    """The run it reruns is named, its status unknown (``None``)."""
    _rerun(history, "run-2", "gone-run", T0, "Succeeded")
    [run] = history.runs()
    assert run.rerun_of == RunLink("gone-run", None)


def test_a_start_request_is_an_audit_row(history: History) -> None:
    """Who asked, why, when, the workflow, params and the run it reruns: one ``start`` row a
    run a request started; a run started in a script has none."""
    _first(history)
    _rerun(history, "run-2", "run-1", T0 + 60, "Succeeded")
    history.store([lifecycle("script", "ENGINE_STARTED", T0 + 90, name="etl")])
    starts = [event for event in history.audit() if event.action == "start"]
    assert [(e.run_id, e.request_id, e.type) for e in starts] == [
        ("run-2", "req-run-2", "nightly"),
        ("run-1", "req-1", "nightly"),
    ]
    rerun, first = starts
    assert (first.issued_by, first.reason, first.issued_at) == ("alice", "the nightly load",
                                                                T0 - 1)  # fmt: skip
    assert first.params == {"day": "2026-11-20", "n": 5}
    assert (first.scope, first.source, first.vouched) == ("run:run-1", "host-1", None)
    assert rerun.started is not None
    assert (rerun.started["rerun_of"], rerun.started["root_run"]) == ("run-1", "run-1")
    assert rerun.to_json()["started"]["name"] == "nightly"
    assert [e.run_id for e in history.audit(since=T0 + 30) if e.action == "start"] == ["run-2"]


def test_a_start_heard_only_from_another_source_is_not_the_runs(history: History) -> None:
    """An ENGINE_STARTED from another source than the run's is refused: its name and
    origin are not stored, nor is an audit row made of it."""
    history.store([task("run-1", "extract-1", "RUNNING", T0, seq=2)])
    forged = lifecycle("run-1", "ENGINE_STARTED", T0, name="forged", origin=_ORIGIN,
                       source="intruder")  # fmt: skip
    assert history.store([forged]).refused == 1
    [run] = history.runs()
    assert (run.name, run.origin) == (None, None)
    assert [e for e in history.audit() if e.action == "start"] == []


def test_the_first_start_stored_stays(history: History) -> None:
    """A second ENGINE_STARTED (a copy, or a restart's) changes no name nor origin."""
    _first(history)
    history.store([lifecycle("run-1", "ENGINE_STARTED", T0 + 5, seq=9, name="other",
                             origin={"workflow": "other"})])  # fmt: skip
    [run] = history.runs()
    assert (run.name, run.workflow) == ("nightly", "nightly")


def test_a_runs_reused_results_are_counted_by_their_run(history: History) -> None:
    """``reused``: per run its results came from, how many tasks took one."""
    _first(history)
    _rerun(history, "run-2", "run-1", T0 + 60, "Succeeded")
    assert history.reused("run-2") == {"run-1": 1}
    assert history.reused("run-1") == {}
    assert history.reused("nobody") == {}


def test_a_reused_result_is_no_execution(history: History) -> None:
    """The task statistics, exact and from the rollup, and a task's executions count the
    runs where it ran, not those that reused its result."""
    _first(history)
    _rerun(history, "run-2", "run-1", T0 + 60, "Succeeded")
    for exact in (True, False):
        stats = {s.task_name: s for s in history.tasks(exact=exact)}
        assert (stats["extract"].runs, stats["extract"].executions) == (1, 1)
        assert (stats["transform"].runs, stats["transform"].executions) == (2, 2)
    assert [e.run_id for e in history.executions("extract")] == ["run-1"]
    assert history.store([task("run-2", "extract-1", "COMPLETED", T0 + 61, seq=2,
                               reused_from="run-1")]).duplicates == 1  # fmt: skip


def test_a_start_a_dashboard_allowed_is_vouched_for(history: History) -> None:
    """The team dashboard's allowed row of the start (who, ``start``, ``workflow:<name>``)
    vouches for the name the run's start says asked for it; another name stays claimed."""
    _first(history)  # alice's, received at T0
    _rerun(history, "run-2", "run-1", T0 + 60, "Succeeded")  # alice's too, by its origin
    history.record_access(who="alice", via="oidc", action="start", target="workflow:nightly",
                          outcome="allowed", at=T0 - 1, claim="email")  # fmt: skip
    starts = {e.run_id: e.vouched for e in history.audit() if e.action == "start"}
    assert starts == {"run-1": "oidc:email", "run-2": None}


def test_a_task_its_cache_gave_says_so_and_is_no_execution(history: History) -> None:
    """A COMPLETED with ``cached``: from the store (the run that kept it named) or from a
    cache policy (none named); neither ran, so neither is an execution of its task."""
    _first(history)
    history.store(
        [
            lifecycle("run-2", "ENGINE_STARTED", T0 + 60, seq=1, name="nightly"),
            task(
                "run-2", "extract-1", "COMPLETED", T0 + 61, seq=2, reused_from="run-1", cached=True
            ),
            task("run-2", "render-1", "COMPLETED", T0 + 61, seq=3, cached=True),
            task("run-2", "transform-1", "RUNNING", T0 + 61, seq=4),
            task("run-2", "transform-1", "COMPLETED", T0 + 62, seq=5),
            lifecycle("run-2", "ENGINE_STOPPED", T0 + 63, seq=6, status="Succeeded"),
        ]
    )
    detail = history.run("run-2")
    assert detail is not None
    tasks = {t.task_name: t for t in detail.tasks}
    assert (tasks["extract"].cached, tasks["extract"].reused_from) == (True, "run-1")
    assert (tasks["render"].cached, tasks["render"].reused_from) == (True, None)
    assert (tasks["transform"].cached, tasks["transform"].reused_from) == (False, None)
    assert tasks["render"].to_json()["cached"] is True
    assert "cached" not in tasks["transform"].to_json()
    assert tasks["extract"].states[-1].to_json()["cached"] is True
    assert [e.run_id for e in history.executions("extract")] == ["run-1"]
    assert history.executions("render") == []


def test_a_scheduled_runs_schedule_and_slot_are_kept_and_found(history: History) -> None:
    """A run a schedule started keeps its schedule and slot (in its origin, and found by the
    schedule's name); another run names none."""
    slot = "2026-11-27T01:00:00+00:00"
    origin = {"workflow": "load", "request_id": "sched-nightly-20261127T010000Z",
              "schedule": "nightly", "scheduled_for": slot}  # fmt: skip
    history.store([lifecycle("s1", "ENGINE_STARTED", T0, seq=1, name="load", origin=origin)])
    _first(history)
    [run] = history.runs(schedule="nightly")
    assert (run.run_id, run.schedule, run.scheduled_for) == ("s1", "nightly", slot)
    assert run.to_json()["origin"] == origin
    assert history.runs(schedule="nightl") == []
    detail = history.run("run-1")
    assert detail is not None
    assert (detail.run.schedule, detail.run.scheduled_for) == (None, None)


def test_a_triggered_run_is_found_by_its_triggers_name(history: History) -> None:
    """``runs(trigger=...)`` and ``count_runs(trigger=...)``: the runs that trigger started,
    its name exactly; a run another trigger or a schedule started is not among them."""
    after = {"workflow": "report", "trigger": "report_after_etl", "followed_run": "run-1",
             "trigger_event": "run run-1 of etl Succeeded on s1"}  # fmt: skip
    signal = {"workflow": "report", "trigger": "on_deploy", "trigger_event": "signal d1"}
    scheduled = {"workflow": "report", "schedule": "report_after_etl"}
    history.store(
        [
            lifecycle("t1", "ENGINE_STARTED", T0, seq=1, name="report", origin=after),
            lifecycle("t2", "ENGINE_STARTED", T0 + 1, seq=1, name="report", origin=signal),
            lifecycle("s1", "ENGINE_STARTED", T0 + 2, seq=1, name="report", origin=scheduled),
        ]
    )
    _first(history)
    assert [r.run_id for r in history.runs(trigger="report_after_etl")] == ["t1"]
    assert history.count_runs(trigger="report_after_etl") == 1
    assert history.runs(trigger="report_after") == []
    assert [r.run_id for r in history.runs(trigger="on_deploy", name="report")] == ["t2"]
