"""A rerun's lineage (the run it reruns, the first of its line), and the reruns live in an
engine: one at a time of each run."""

from __future__ import annotations

import asyncio

from cascade.interfaces.wire import RerunMode

from .._errors import RerunError
from .._loops import first_jump
from .._stats import EngineStats
from ..workflow._graph import Graph
from ._rerun import plan_rerun, reused_loops, skip_not_needed
from ._results import RunManifest
from ._run_results import RunResults

__all__ = ["Lineage", "LiveReruns"]


class Lineage:
    """A rerun's lineage: the run it reruns (``rerun_of``, its full id), the first run of its
    line (``root_run``), and that run's ``manifest``."""

    __slots__ = ("manifest", "rerun_of", "root_run")

    def __init__(self, manifest: RunManifest) -> None:
        self.manifest = manifest
        self.rerun_of = manifest.run_id
        self.root_run = manifest.root_run or manifest.run_id


class LiveReruns:
    """The reruns an engine runs now, by the run each reruns: a second rerun of a run while
    one is live raises :class:`RerunError`."""

    def __init__(self, stats: EngineStats) -> None:
        self.stats = stats
        self._live: dict[str, str] = {}  # a run rerun now -> the live run that reruns it

    def live(self, run_id: str) -> str | None:
        """The live run that reruns ``run_id`` (a full id), or ``None``."""
        return self._live.get(run_id)

    async def prepare(
        self,
        results: RunResults,
        graph: Graph,
        rerun_of: str,
        rerun: RerunMode,
        from_task: str | None,
        run_id: str,
    ) -> Lineage:
        """Plan the run ``run_id``, a rerun of ``rerun_of`` (an id or a prefix), read the
        results it reuses (the store in threads), and find the tasks it need not run (no task
        it runs needs them, :func:`skip_not_needed`); it is live from here until :meth:`end`."""
        store = results.store

        def manifest() -> RunManifest:
            return store.manifest(store.resolve(rerun_of))

        found = Lineage(await asyncio.to_thread(manifest))
        live = self._live.get(found.rerun_of)
        if live is not None:
            raise RerunError(f"a rerun of {found.rerun_of} is live: {live}")
        self._live[found.rerun_of] = run_id
        try:
            steps = plan_rerun(graph, results.prints, found.manifest, rerun, from_task)
            results.rerunning(found.manifest, rerun, steps)
            await results.load(steps, say=False)
            reused = results.reused
            going_on = {
                id(step.node)
                for step in reused_loops(steps)
                if first_jump(step.node, reused[id(step.node)][0]) is not None
            }
            skip_not_needed(graph, steps, going_on)
            results.not_needing(steps)
            results.say_refused(steps)
        except BaseException:
            self.end(found)
            raise
        self.stats.results_reused += len(results.reused)
        return found

    def end(self, lineage: Lineage) -> None:
        """The rerun of ``lineage`` ended: its run may be rerun again."""
        self._live.pop(lineage.rerun_of, None)
