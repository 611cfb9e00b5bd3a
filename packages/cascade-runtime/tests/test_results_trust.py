"""What a rerun believes: a value a person gave never passes for a computed one, and a kept
result proves itself (its digest and size, a regular file, read within bounds)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cascade.runtime import Engine, ResultStore, RunStarted, task
from cascade.runtime.testing import eventually


def memory_url() -> str:
    """A store of its own per test: fsspec's memory file system is one per process."""
    return f"memory://trust-{uuid.uuid4().hex}"


class Report:
    """``report(load(n))``: ``load`` fails while ``broken`` and is held for a decision."""

    def __init__(self) -> None:
        self.broken = False
        self.failed = asyncio.Event()
        self.calls = {"load": 0, "report": 0}

        @task(name="load", on_failure="hold")
        async def load(n: int) -> list[int]:
            self.calls["load"] += 1
            if self.broken:
                self.failed.set()
                raise ConnectionError("the API is down")
            return list(range(n))

        @task(name="report")
        async def report(rows: list[int]) -> int:
            self.calls["report"] += 1
            return sum(rows)

        self.load, self.report = load, report

    def target(self) -> Any:
        return self.report(self.load(4))


def run_ids(engine: Engine) -> list[str]:
    started: list[str] = []
    engine.events.subscribe(lambda e: started.append(e.run_id) if isinstance(e, RunStarted) else None)
    return started


async def completed_by_decision(engine: Engine, wf: Report, started: list[str]) -> str:
    """Run ``wf`` with ``load`` failing, complete it with a value given by ops-1."""
    wf.broken = True
    running = asyncio.create_task(engine.run(wf.target()))
    await wf.failed.wait()
    run_id = started[-1]
    await eventually(lambda: engine.decide(run_id, "load", "complete", result=[999000],
                                           issued_by="ops-1") is not None)  # fmt: skip
    assert await running == 999000
    wf.broken = False
    return run_id


async def test_a_decided_value_and_what_was_computed_from_it_are_never_reused() -> None:
    wf = Report()
    engine = Engine(results=memory_url())
    started = run_ids(engine)
    assert await engine.run(wf.target()) == 6
    honest = started[-1]
    decided = await completed_by_decision(engine, wf, started)
    store = engine.results
    assert store is not None
    manifest = store.manifest(decided)
    assert manifest.tasks["load#1"].from_run is None
    report = manifest.tasks["report#1"]
    assert report.from_run is None
    assert report.not_kept == "decided upstream: load completed by ops-1"
    # the honest result kept under report's fingerprint was not overwritten
    assert await engine.run(wf.target(), rerun_of=honest) == 6
    plan = await engine.plan(wf.target(), rerun_of=decided)
    assert [(s.task_name, s.action, s.why) for s in plan] == [
        ("load", "run", "its result was not kept: completed by a decision (ops-1): "
                        "its result was given, not computed"),
        ("report", "run", "its result was not kept: decided upstream: load completed by ops-1"),
    ]  # fmt: skip
    calls = dict(wf.calls)
    assert await engine.run(wf.target(), rerun_of=decided) == 6
    assert wf.calls == {"load": calls["load"] + 1, "report": calls["report"] + 1}
