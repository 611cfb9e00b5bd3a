"""Generated workflows run as docs/workflows.md says: each random plan (calls, maps, conditions,
routers nested and shared, parameters, failures, retries, holds and their decisions, caches,
reruns) runs on the real engine and is compared with a reference interpreter of the docs.

``CASCADE_GENERATED_EXAMPLES`` sets how many plans each test draws (``nox -s generated`` draws
thousands); ``CASCADE_GENERATED_SHRINK=1`` shrinks a failing plan to a small one (minutes),
which by default is reported as drawn. The draws are derandomized: CI draws the same plans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cascade_generated_plans import STARTS, WORK, Plan, build, plans
from cascade_generated_reference import expect
from cascade_generated_runs import (
    SAID_WITHIN,
    disagreements,
    observe,
    plan_disagreements,
    rerun_disagreements,
    start_disagreements,
)
from hypothesis import HealthCheck, Phase, given, settings

from cascade.runtime import Engine, ProcessExecutor, ThreadExecutor

EXAMPLES = int(os.environ.get("CASCADE_GENERATED_EXAMPLES", "300"))
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("CASCADE_GENERATED_SHRINK") == "1":
    PHASES.append(Phase.shrink)


def drawn(share: float) -> settings:
    """Settings drawing ``share`` of the examples, reproducibly."""
    return settings(
        max_examples=max(1, int(EXAMPLES * share)),
        derandomize=True,
        deadline=None,
        phases=PHASES,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(autouse=True)
def _quiet_failures(caplog: pytest.LogCaptureFixture) -> None:
    """A generated run fails tasks on purpose: their warnings are not the test's."""
    caplog.set_level(logging.CRITICAL, logger="cascade")


def check(plan: Plan, found: list[str]) -> None:
    """Fail with the plan and each disagreement, one a line."""
    assert not found, "\n".join([*found, repr(plan)])


@drawn(1.0)
@given(plans())
def test_a_generated_workflow_runs_as_the_docs_say(plan: Plan) -> None:
    """Tasks run (how often, in what order), results, each task's last state and why, on the
    wire too, and the run's outcome: as the reference says, on the default threads."""
    check(plan, disagreements(expect(plan), asyncio.run(observe(plan))))


@drawn(0.1)
@given(plans(max_nodes=10))
def test_a_generated_workflows_tasks_are_running_when_a_thread_starts_them(plan: Plan) -> None:
    """On one thread, each body working 1.5 times ``SAID_WITHIN``: each attempt's RUNNING is
    when its body started (not when it was handed to the thread's queue), and the run is as the
    reference says."""
    STARTS.clear()
    WORK[0] = SAID_WITHIN * 1.5
    try:
        observed = asyncio.run(observe(plan, {"executor": ThreadExecutor(1)}))
    finally:
        WORK[0] = 0.0
    check(plan, disagreements(expect(plan), observed) + start_disagreements(observed, STARTS))


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessExecutor]:
    """Two worker processes, shared by the examples."""
    with ProcessExecutor(2) as executor:
        yield executor


@drawn(0.05)
@given(plan=plans(max_nodes=10))
def test_a_generated_workflow_runs_as_the_docs_say_in_worker_processes(
    plan: Plan, processes: ProcessExecutor
) -> None:
    """The same, the bodies run in worker processes (what ran is read from the events)."""
    observed = asyncio.run(observe(plan, {"executor": processes}))
    check(plan, disagreements(expect(plan), observed))


def kept_engine() -> dict[str, Any]:
    """Options of an engine keeping results in a store of its own."""
    return {"results": f"memory://generated-{uuid.uuid4().hex}"}


@drawn(0.3)
@given(plans(holds=False, unkept=True))
def test_a_rerun_does_what_its_plan_says_and_reuses_what_completed(plan: Plan) -> None:
    """After a run, ``engine.plan`` reuses what completed (and nothing else), and the rerun
    reuses exactly that and runs the rest as the first run did, but what no task it runs
    needs; it runs nothing its plan reuses or skips, nor a task whose users were all reused."""

    async def main() -> list[str]:
        options = kept_engine()
        first = await observe(plan, options)
        before = expect(plan)
        found = disagreements(before, first)
        steps = await Engine(**options).plan(
            build(plan), rerun_of=first.run_id, params=dict(plan.params)
        )
        rerun = expect(plan, kept=before.outcomes, rerun=True)
        found += plan_disagreements(before, before.outcomes, steps, rerun)
        again = await observe(plan, options, rerun_of=first.run_id)
        found += rerun_disagreements(plan, steps, again)
        return found + disagreements(rerun, again)

    check(plan, asyncio.run(main()))


@drawn(0.3)
@given(plans(holds=False, caches=True))
def test_a_cached_task_takes_what_an_earlier_run_kept(plan: Plan) -> None:
    """A second run sharing the store: each cached task that completed before ends
    ``COMPLETED`` cached, without running; the rest runs as before."""

    async def main() -> list[str]:
        options = kept_engine()
        before = expect(plan)
        found = disagreements(before, await observe(plan, options))
        again = await observe(plan, options)
        return found + disagreements(expect(plan, kept=before.outcomes), again)

    check(plan, asyncio.run(main()))
