"""The per-task rollup kept at ingest: what `cascade tasks` reads when a period holds many
executions. Counts exact, percentiles within 2.5 %, copies never counted twice."""

from __future__ import annotations

import math
import random
import threading

import pytest

from cascade.history import History, Received
from cascade.history.writes import _rollup as rollup

from .messages import T0, task

HOUR = 3600.0


def test_a_bucket_stands_for_its_durations_within_2_5_percent() -> None:
    """Every duration from 0.01 ms to 10 years falls in a bucket whose value is within 2.5 %."""
    rng = random.Random(24)
    for _ in range(20_000):
        duration = 10 ** rng.uniform(-2, 11.5)
        value = rollup.bucket_value(rollup.bucket_of(duration))
        assert abs(value - duration) <= (math.sqrt(rollup.BUCKET_RATIO) - 1) * duration + 1e-12
    assert rollup.bucket_of(0.0) == rollup.bucket_of(-5) == rollup.bucket_of(float("nan")) == 0
    assert rollup.bucket_value(0) == 0.0
    assert rollup.bucket_of(float("inf")) == rollup.bucket_of(1e300)


def _executions(run: str, name: str, durations: list[float], start: float) -> list[Received]:
    events = []
    for index, duration in enumerate(durations):
        state = "FAILED" if index % 10 == 9 else "COMPLETED"
        events.append(
            task(run, f"{name}-{index}", state, start + index, name=name, duration_ms=duration)
        )
    return events


def test_the_rollup_agrees_with_the_exact_statistics(history: History) -> None:
    """Runs, executions, failures and max exactly; p50 and p95 within 2.5 %."""
    rng = random.Random(7)
    for run in range(5):
        durations = [rng.lognormvariate(4, 1.2) for _ in range(40)]
        history.store(_executions(f"r{run}", "load", durations, T0 + run * 100))
        history.store(_executions(f"r{run}", "api", [5.0] * 3, T0 + run * 100))
    exact = {s.task_name: s for s in history.tasks(exact=True)}
    rolled = {s.task_name: s for s in history.tasks(exact=False)}
    assert set(exact) == set(rolled) == {"load", "api"}
    for name in exact:
        e, r = exact[name], rolled[name]
        assert (r.runs, r.executions, r.failures, r.max_ms) == (
            e.runs,
            e.executions,
            e.failures,
            e.max_ms,
        )
        assert abs(r.p50_ms - e.p50_ms) <= 0.025 * e.p50_ms
        assert abs(r.p95_ms - e.p95_ms) <= 0.025 * e.p95_ms
        assert (r.approximate, e.approximate) == (True, False)
    assert [s.task_name for s in history.tasks(exact=False, name_glob="l*")] == ["load"]


def test_copies_are_not_counted_twice(history: History) -> None:
    """The same executions stored again (a resend, a second recorder) change nothing."""
    batch = _executions("r1", "load", [10.0, 20.0, 30.0], T0)
    history.store(batch)
    history.store(batch)
    history.store(batch[:1])
    [stats] = history.tasks(exact=False)
    assert (stats.runs, stats.executions) == (1, 3)


def test_two_writers_at_once_count_each_execution_once(database_url: str) -> None:
    """Two histories on one database storing the same batches concurrently."""
    batches = [_executions(f"r{i}", "load", [float(i + 1)] * 20, T0 + i) for i in range(10)]
    first, second = History(database_url, mode="write"), History(database_url, mode="write")
    try:
        threads = [
            threading.Thread(target=lambda h=h: [h.store(b) for b in batches])
            for h in (first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        [stats] = first.tasks(exact=False)
        assert (stats.runs, stats.executions, stats.failures) == (10, 200, 20)
    finally:
        first.close()
        second.close()


def test_the_period_starts_at_the_hour_since_falls_in(history: History) -> None:
    """An execution earlier in the same hour as ``since`` counts; one an hour before does not."""
    base = rollup.hour_of(T0)
    history.store(
        [
            task("r1", "a-1", "COMPLETED", base + 10, name="a", duration_ms=1),
            task("r2", "a-1", "COMPLETED", base - HOUR + 10, name="a", duration_ms=1),
        ]
    )
    [stats] = history.tasks(since=base + 1800, exact=False)
    assert (stats.executions, stats.runs) == (1, 1)  # its hour's, not the hour before's
    assert history.tasks(since=base + 1800, exact=True) == []  # exactly from since: none


def test_large_periods_are_read_from_the_rollup(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default exact up to EXACT_UP_TO executions in the period, the rollup beyond."""
    history.store(_executions("r1", "load", [1.0, 2.0, 3.0], T0))
    assert not history.tasks()[0].approximate
    monkeypatch.setattr(rollup, "EXACT_UP_TO", 2)
    assert history.tasks()[0].approximate
    assert history.tasks()[0].to_json()["approximate"] is True


def test_pruning_takes_the_rollup_along(history: History) -> None:
    """Hours older than the prune's moment and the pruned runs' pairs go."""
    history.store(_executions("r1", "load", [1.0, 2.0], T0))
    history.prune(before=4e9)
    assert history.tasks(exact=False) == []
