"""A run whose engine dies keeps what it finished: its journal in the results store lists the
results it kept as it goes, so its manifest can be made without it and a rerun (a carry-on)
reuses them; a run that ends replaces its journal with its manifest."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

from cascade.runtime import (
    Engine,
    RerunError,
    ResultStore,
    RunStarted,
    TaskCompleted,
    TaskRunning,
)
from cascade.runtime.testing import EventRecorder, eventually

# a chain of ten steps whose sixth never ends where $CHAIN_HANG names a file it makes then: the
# child's engine is killed there
_WORKFLOW = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    import cascade.runtime as cs

    @cs.task
    async def step(previous: int, n: int) -> int:
        hang = os.environ.get("CHAIN_HANG")
        if n == 6 and hang:
            Path(hang).touch()
            await asyncio.Event().wait()  # until the engine is killed
        return previous + n

    def chain():
        value = step(0, 1)
        for n in range(2, 11):
            value = step(value, n)
        return value

    if __name__ == "__main__":
        engine = cs.Engine(results=sys.argv[1], heartbeat_interval=None)
        print(asyncio.run(engine.run(chain())))
    """
)


def _kept(store: ResultStore, run_id: str) -> int:
    """How many tasks ``run_id``'s manifest lists (its journal's, while it runs); -1 while the
    store has no trace of it yet (its journal's head is written off the loop)."""
    try:
        return len(store.manifest(run_id).tasks)
    except RerunError:
        return -1


async def test_a_killed_run_is_rerun_from_what_it_kept(tmp_path: Path) -> None:
    script = tmp_path / "chain.py"
    script.write_text(_WORKFLOW, encoding="utf-8")
    store_dir = tmp_path / "results"
    hang = tmp_path / "reached"
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(store_dir), env={**os.environ, "CHAIN_HANG": str(hang)}
    )
    try:
        await eventually(hang.exists, timeout=60)
        store = ResultStore(str(store_dir))

        def kept() -> int:
            runs = list((store_dir / "runs").iterdir()) if (store_dir / "runs").exists() else []
            if len(runs) != 1:
                return 0
            return _kept(store, runs[0].name.removesuffix(".json"))

        await eventually(lambda: kept() == 5, timeout=30)  # the journal lags a batch at most
    finally:
        os.kill(child.pid, signal.SIGKILL)  # as an OOM kill or a lost machine does
        await child.wait()
    (lost_dir,) = (store_dir / "runs").iterdir()
    lost = lost_dir.name
    manifest = store.manifest(store.resolve(lost[:8]))
    assert manifest.status == "Unfinished"
    assert sorted(t.name for t in manifest.tasks.values()) == ["step"] * 5
    assert {t.from_run for t in manifest.tasks.values()} == {lost}

    # the workflow's code, loaded here (no $CHAIN_HANG): its sixth step ends now
    namespace: dict[str, object] = {}
    exec(compile(_WORKFLOW, str(script), "exec"), namespace)
    chain = namespace["chain"]
    assert callable(chain)
    engine = Engine(results=str(store_dir), heartbeat_interval=None)
    recorded = EventRecorder()
    engine.events.subscribe(recorded)
    assert await engine.run(chain(), rerun_of=lost[:8]) == sum(range(1, 11))
    (started,) = [e for e in recorded.events if isinstance(e, RunStarted)]
    reused = [e for e in recorded.events if isinstance(e, TaskCompleted) and e.reused_from]
    ran = [e for e in recorded.events if isinstance(e, TaskRunning)]
    assert [e.reused_from for e in reused] == [lost] * 5  # nothing finished ran twice
    assert len(ran) == 5
    final = store.manifest(started.run_id)
    assert final.status == "Succeeded"
    assert final.rerun_of == lost
    assert not (store_dir / "runs" / started.run_id).exists()  # its journal replaced


async def test_a_live_run_s_journal_lists_what_it_kept_until_its_manifest(tmp_path: Path) -> None:
    import cascade.runtime as cs

    release = asyncio.Event()

    @cs.task
    async def first() -> int:
        return 1

    @cs.task
    async def second(x: int) -> int:
        await release.wait()
        return x + 1

    engine = Engine(results=str(tmp_path), heartbeat_interval=None)
    recorded = EventRecorder()
    engine.events.subscribe(recorded)
    running = asyncio.create_task(engine.run(second(first())))
    await recorded.until(lambda: any(isinstance(e, RunStarted) for e in recorded.events))
    (started,) = [e for e in recorded.events if isinstance(e, RunStarted)]
    store = ResultStore(str(tmp_path))
    await eventually(lambda: _kept(store, started.run_id) == 1)
    unfinished = store.manifest(started.run_id)
    assert unfinished.status == "Unfinished"
    assert [t.name for t in unfinished.tasks.values()] == ["first"]
    release.set()
    assert await running == 2
    assert store.manifest(started.run_id).status == "Succeeded"
    assert not (tmp_path / "runs" / started.run_id).exists()
