"""Queries: runs newest first with their filters, one run's tasks, per-task statistics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cascade.history import History, Received

from .messages import T0, heartbeat, lifecycle, task


def _run(
    run_id: str,
    start: float,
    *,
    failed: bool = False,
    project: str = "default",
    source: str = "host-1",
    names: tuple[str, ...] = ("fetch", "load"),
) -> list[Received]:
    events = [
        lifecycle(
            run_id, "ENGINE_STARTED", start, tasks=len(names), project_id=project, source=source
        )
    ]
    for index, name in enumerate(names):
        task_id = f"{name}-{index}"
        fails = failed and index == len(names) - 1
        events.append(
            task(run_id, task_id, "RUNNING", start + index, project_id=project, source=source)
        )
        end = "FAILED" if fails else "COMPLETED"
        events.append(
            task(
                run_id,
                task_id,
                end,
                start + index + 1,
                duration_ms=1000,
                error="ValueError: bad" if fails else "",
                project_id=project,
                source=source,
            )
        )
    status = "Failed" if failed else "Succeeded"
    run_error = f"{names[-1]}-{len(names) - 1} failed" if failed else None
    end_ts = start + len(names) + 1
    events.append(
        lifecycle(
            run_id,
            "ENGINE_STOPPED",
            end_ts,
            status=status,
            error=run_error,
            project_id=project,
            source=source,
        )
    )
    return events


@pytest.fixture
def runs(history: History) -> History:
    """Four finished runs an hour apart and one still running, of two projects and sources."""
    history.store(_run("run-a", T0))
    history.store(_run("run-b", T0 + 3600, failed=True, project="etl"))
    history.store(_run("run-c", T0 + 7200, source="host-2", names=("fetch", "report")))
    history.store(_run("run-d", T0 + 10800, failed=True))
    history.store(
        [
            lifecycle("run-e", "ENGINE_STARTED", T0 + 14400, tasks=3),
            task("run-e", "fetch-0", "RUNNING", T0 + 14401),
        ]
    )
    return history


def test_runs_are_newest_first_with_counts_and_durations(runs: History) -> None:
    """Status, start, duration and the tasks counted by their last state."""
    found = runs.runs()
    assert [r.run_id for r in found] == ["run-e", "run-d", "run-c", "run-b", "run-a"]
    running, failed = found[0], found[1]
    assert (running.status, running.duration, running.tasks) == ("Running", None, {"RUNNING": 1})
    assert running.planned_tasks == 3
    assert failed.status == "Failed"
    assert failed.error == "load-1 failed"
    assert failed.duration == 3.0
    assert failed.tasks == {"COMPLETED": 1, "FAILED": 1}


def test_runs_filters(runs: History) -> None:
    """since, status (any case), project, task, source and limit narrow the list; count_runs
    counts what they pick, whatever the limit."""

    def ids(**filters: object) -> list[str]:
        found = [r.run_id for r in runs.runs(**filters)]  # type: ignore[arg-type]
        unlimited = {key: value for key, value in filters.items() if key != "limit"}
        counted = runs.count_runs(**unlimited)  # type: ignore[arg-type]
        assert counted == len(runs.runs(**unlimited, limit=100))  # type: ignore[arg-type]
        return found

    assert ids(status="failed") == ["run-d", "run-b"]
    assert ids(status="RUNNING") == ["run-e"]
    assert ids(project="etl") == ["run-b"]
    assert ids(source="host-2") == ["run-c"]
    assert ids(task="report") == ["run-c"]
    assert ids(since=T0 + 7200) == ["run-e", "run-d", "run-c"]
    assert ids(since=datetime.fromtimestamp(T0 + 10800, timezone.utc)) == ["run-e", "run-d"]
    assert ids(limit=2) == ["run-e", "run-d"]
    assert runs.count_runs() == 5
    assert ids(status="failed", project="default") == ["run-d"]
    assert ids(since=timedelta(days=1)) == []  # T0 is more than a day before the tests run


def test_an_unknown_status_is_a_value_error(runs: History) -> None:
    """Only the statuses a run has are accepted."""
    with pytest.raises(ValueError, match="unknown run status 'broken'"):
        runs.runs(status="broken")


def test_one_run_has_every_task_with_its_states(history: History) -> None:
    """States with times in order, attempts counted, the time a constraint held it, its error."""
    history.store(
        [
            lifecycle("r1", "ENGINE_STARTED", T0),
            task("r1", "api-1", "BLOCKED", T0 + 1),
            task("r1", "api-1", "RUNNING", T0 + 3),
            task("r1", "api-1", "RETRYING", T0 + 4, duration_ms=1000, error="IOError: 1"),
            task("r1", "api-1", "RUNNING", T0 + 5, duration_ms=2000),
            task("r1", "api-1", "FAILED", T0 + 6, duration_ms=3000, error="IOError: 2"),
            task("r1", "sum-1", "SKIPPED", T0 + 6),
        ]
    )
    detail = history.run("r1")
    assert detail is not None
    api, total = detail.tasks
    assert [(s.state, s.ts - T0, s.attempt) for s in api.states] == [
        ("BLOCKED", 1, 1),
        ("RUNNING", 3, 1),
        ("RETRYING", 4, 1),
        ("RUNNING", 5, 2),
        ("FAILED", 6, 2),
    ]
    assert (api.state, api.attempts, api.error, api.blocked_s) == ("FAILED", 2, "IOError: 2", 2.0)
    assert (api.started_at, api.ended_at, api.duration_ms) == (T0 + 3, T0 + 6, 3000)
    assert (total.state, total.attempts, total.started_at) == ("SKIPPED", 0, None)
    assert detail.run.tasks == {"FAILED": 1, "SKIPPED": 1}
    json = detail.to_json()
    assert json["tasks"][0]["states"][0]["state"] == "BLOCKED"


def test_a_run_is_found_by_a_prefix_of_its_id(runs: History) -> None:
    """A prefix only one run has finds it; one several have is an error; none is None."""
    found = runs.run("run-c")
    assert found is not None
    assert found.run.run_id == "run-c"
    with pytest.raises(ValueError, match="several runs"):
        runs.run("run-")
    assert runs.run("nope") is None
    assert runs.run("run_") is None  # LIKE's wildcards are matched as themselves


def test_the_ids_a_prefix_could_name(runs: History) -> None:
    """Every recorded id with that prefix, in order, at most ``limit``; LIKE's wildcards are
    matched as themselves."""
    everything = runs.run_ids("run-")
    assert everything == sorted(everything)
    assert "run-c" in everything
    assert len(everything) > 1
    assert runs.run_ids("run-", limit=1) == everything[:1]
    assert runs.run_ids("run-c") == ["run-c"]
    assert runs.run_ids("run_") == runs.run_ids("nope") == []


def test_missing_events_come_from_the_numbers(history: History) -> None:
    """An engine that numbers its events: what the heartbeat announced and never came."""
    history.store([task("r1", "a-1", "RUNNING", T0, seq=1), heartbeat("r1", T0 + 1, last_seq=3)])
    assert history.runs()[0].missing_events == 2


def test_task_statistics(history: History) -> None:
    """Per name: runs, executions, failures and their rate, nearest-rank p50/p95 and max."""
    batch = []
    for i in range(1, 101):  # 100 executions of `work` in 10 runs, durations 1..100 ms
        run_id = f"run-{i % 10}"
        state = "FAILED" if i % 20 == 0 else "COMPLETED"
        batch.append(task(run_id, f"w-{i}", state, T0 + i, name="work", duration_ms=i))
    batch.append(task("run-0", "load-1", "COMPLETED", T0, name="load", duration_ms=7))
    batch.append(task("run-0", "load-2", "RUNNING", T0, name="load"))  # not finished: left out
    history.store(batch)
    stats = {s.task_name: s for s in history.tasks()}
    work = stats["work"]
    assert (work.runs, work.executions, work.failures) == (10, 100, 5)
    assert work.failure_rate == 0.05
    assert (work.p50_ms, work.p95_ms, work.max_ms) == (50, 95, 100)
    load = stats["load"]
    assert (load.executions, load.p50_ms, load.p95_ms, load.max_ms) == (1, 7, 7, 7)
    assert [s.task_name for s in history.tasks(since=T0 + 51)] == ["work"]
    assert history.tasks(since=T0 + 51)[0].executions == 50


def test_task_statistics_by_glob(history: History) -> None:
    """The glob is matched as fnmatch does, case-sensitively, classes included."""
    names = ["api_get", "api_put", "API_x", "apix", "a%b", "db_load"]
    history.store(
        [task("r1", f"{name}-1", "COMPLETED", T0, name=name) for name in names],
    )

    def matching(glob: str) -> list[str]:
        return [s.task_name for s in history.tasks(name_glob=glob)]

    assert matching("api_*") == ["api_get", "api_put"]
    assert matching("api_[gp]??") == ["api_get", "api_put"]
    assert matching("a%*") == ["a%b"]
    assert matching("*load") == ["db_load"]
    assert matching("api?") == ["apix"]


def test_a_tasks_executions_over_time(history: History) -> None:
    """The last finished executions of one task name, oldest first, each with its run."""
    history.store(
        [
            task("r1", "load-1", "RUNNING", T0, name="load"),
            task("r1", "load-1", "COMPLETED", T0 + 1, name="load", duration_ms=10),
            task("r2", "load-1", "FAILED", T0 + 5, name="load", duration_ms=30, error="E"),
            task("r3", "load-1", "COMPLETED", T0 + 9, name="load", duration_ms=20),
            task("r3", "other-1", "COMPLETED", T0 + 9, name="other", duration_ms=99),
        ]
    )
    points = history.executions("load")
    assert [(p.run_id, p.ts - T0, p.duration_ms, p.state) for p in points] == [
        ("r1", 1, 10, "COMPLETED"),
        ("r2", 5, 30, "FAILED"),
        ("r3", 9, 20, "COMPLETED"),
    ]
    assert [p.run_id for p in history.executions("load", limit=2)] == ["r2", "r3"]
    assert [p.run_id for p in history.executions("load", since=T0 + 6)] == ["r3"]
    assert history.executions("lo*") == []  # a name, not a glob
    assert points[0].to_json()["duration_ms"] == 10
