"""`cascade watch` says how many of a run's completed tasks took a result instead of running:
from their cache (``with_cache``) or, in a rerun, from the run that kept it."""

from __future__ import annotations

import uuid

from rich.console import Console

from cascade.cli.rendering import render_watch
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector, telemetry
from cascade.interfaces import TaskStateEvent, telemetry_filter
from cascade.reader import ReaderModel
from cascade.runtime import Engine, RunStarted, task


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
async def report(rows: list[int], tag: str) -> int:
    return sum(rows)


def shown(state: ReaderModel) -> str:
    console = Console(record=True, width=160)
    console.print(render_watch(state))
    return console.export_text()


async def test_watch_counts_the_cache_hits_and_the_reused_results_of_a_run() -> None:
    """A second run whose extract hits its cache, and a rerun of it that reuses what it kept:
    the watch counts each (a reader of the broker, as the command is)."""
    broker = InMemoryBroker()
    engine = Engine(
        InMemoryConnector(broker, source_id="engine-1"),
        results=f"memory://watch-{uuid.uuid4().hex}",
        heartbeat_interval=None,
    )
    reader = InMemoryConnector(broker, presence=False)
    await reader.connect()
    state = ReaderModel()
    await reader.subscribe(telemetry_filter(), state.apply)
    run_ids: list[str] = []
    engine.events.subscribe(
        lambda e: run_ids.append(e.run_id) if isinstance(e, RunStarted) else None
    )

    def target(tag: str) -> object:
        return report(extract(4).with_cache(), tag)

    assert await engine.run(target("a")) == 6
    assert await engine.run(target("b")) == 6  # extract cached, report runs anew
    assert await engine.run(target("b"), rerun_of=run_ids[1]) == 6  # both reused
    await reader.disconnect()
    first, second, rerun = (state.runs[run_id] for run_id in run_ids)
    assert (first.reuses(), second.reuses()) == ({}, {"cached": 1})
    assert rerun.reuses() == {"reused": 2}
    text = shown(state)
    assert "completed 2 (1 cached)" in text
    assert "completed 2 (2 reused)" in text


def test_a_copy_or_a_later_state_does_not_count_a_reuse_twice() -> None:
    """A resent copy counts once; a task that ran counts nowhere."""
    state = ReaderModel()
    cached = TaskStateEvent(task_id="t-1", task_name="t", state="COMPLETED", cached=True)
    state.apply(telemetry(cached, seq=1))
    state.apply(telemetry(cached, seq=1))
    reused = TaskStateEvent(task_id="t-2", task_name="t", state="COMPLETED", reused_from="r0")
    state.apply(telemetry(reused, seq=2))
    ran = TaskStateEvent(task_id="t-3", task_name="t", state="COMPLETED")
    state.apply(telemetry(ran, seq=3))
    assert state.runs["run-1"].reuses() == {"cached": 1, "reused": 1}
    run = state.runs["run-1"]
    assert run.count("COMPLETED") == 3
    assert [(t.reused, t.reused_from) for t in run.tasks.values()] == [
        ("cached", None),
        ("reused", "r0"),
        (None, None),
    ]
