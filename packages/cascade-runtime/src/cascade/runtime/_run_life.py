"""A run's life, from its target to its end, in one place.

:func:`prepare` builds a target's graph once and checks what can be checked before a run is
asked for (a bad target, a task cached in a store the engine does not keep): a server's check
hands the :class:`Prepared` it made to the run it starts. :class:`RunLife` is then the run's
whole life: its graph bound and checked against what the engine has (params, resources,
executors), planned (its results, a rerun's reuse and lineage), started (constraints, tracing,
log forwarding, the broker's wiring, ``RunStarted``), run (:class:`~._run.Run`, the state
machine of its tasks), and closed (its manifest, ``RunFinished``, tracing, wiring).
:class:`RunHost` is what it is given of the engine: what outlives a run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from cascade.interfaces import Connector
from cascade.interfaces.commands import DecisionReply, DecisionRequest
from cascade.interfaces.serving import PlanStep, RunOrigin
from cascade.interfaces.wire import RerunMode

from ._ended_runs import EndedRuns
from ._errors import RerunError, RunCancelledError
from ._events import EventBus, RunFinished, RunStarted
from ._loops import first_jump
from ._recv import SIGNALS, signals
from ._run import HoldDefaults, Run
from ._run_notice import announce_run
from ._run_resources import check_resources
from ._stats import EngineStats
from ._steps import describe
from ._tracing import RunTrace, start_run
from .constraints._capacity import Capacity
from .constraints._constraints import ConstraintManager
from .executors._placement import Placement
from .link._link_context import LinkContext
from .link._run_wiring import RunWiring
from .logs._logs import LogForwarding, RunLogs
from .results._cache import RunCache, check_cache
from .results._fingerprints import fingerprint_graph
from .results._lineage import Lineage, LiveReruns
from .results._rerun import (
    check_rerun,
    plan_rerun,
    reused_loops,
    reused_selectors,
    skip_not_needed,
    skip_not_routed,
)
from .results._results import ResultStore, RunManifest
from .results._run_results import RunResults, plan_items, read_kept
from .workflow._graph import Graph, build_graph, run_name, task_keys
from .workflow._graph_wire import wire_graph
from .workflow._resource import Resource
from .workflow._run_state import RunState, target_results

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = [
    "Prepared",
    "RunHost",
    "RunLife",
    "RunRequest",
    "plan_rerun_of",
    "prepare",
    "rerun_store",
]


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """A target made ready to run: its ``graph`` built once (cycles and bad targets refused),
    and its cached tasks checked against the results store (``cache_checked``), when one was
    given to check them against. Its graph holds no run's state: a plan of it and its run
    share it."""

    target: Any
    graph: Graph
    cache_checked: bool


def prepare(target: Any, store: ResultStore | None = None, *, check: bool = True) -> Prepared:
    """``target``'s graph, built once; with ``check``, its cached tasks checked against
    ``store`` (``CacheError`` for one cached in a store the engine does not keep)."""
    graph = build_graph(target)
    if check and graph.cached:
        check_cache(graph, store)
    return Prepared(target, graph, check)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A run asked for, checked once as it is made: what it runs (``prepared``), its id, the
    values of its target's params, its name (``None``: the run's it reruns, else its
    target's), where it came from (``origin``: a served run's request, published on its start),
    what it reruns (``rerun_of``, ``rerun``, ``from_task``) and whether :meth:`Engine.run
    <cascade.runtime.Engine.run>` was called for it (``direct``: it prints its start line where
    logging shows nothing)."""

    prepared: Prepared
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    params: Mapping[str, Any] | None = None
    name: str | None = None
    origin: RunOrigin | None = None
    rerun_of: str | None = None
    rerun: RerunMode = "failure"
    from_task: str | None = None
    direct: bool = False

    def __post_init__(self) -> None:
        check_rerun(self.rerun, self.from_task)
        if self.rerun_of is None and self.rerun != "failure":
            raise ValueError("rerun and from_task go with rerun_of")


def rerun_store(results: ResultStore | None, rerun_of: str) -> ResultStore:
    """Where a rerun of ``rerun_of`` finds its run: ``results``, else :class:`RerunError`."""
    if results is None:
        raise RerunError(
            f"cannot rerun {rerun_of}: this engine keeps no results (Engine(results=...))"
        )
    return results


async def plan_rerun_of(
    state: RunState,
    store: ResultStore,
    rerun_of: str,
    rerun: RerunMode,
    from_task: str | None,
) -> list[PlanStep]:
    """What a rerun of ``rerun_of`` (kept in ``store``) would do with each task of
    ``state``'s graph (its params bound in it), in the graph's order, running nothing: the dry
    run ``Engine.plan`` is. Its kept results are proven as the rerun proves them; the tasks no
    task it runs needs are skipped (not needed); its routed tasks and maps are decided in
    ``state`` (the plan's own, never run) as far as the kept values tell."""
    graph = state.graph
    prints = fingerprint_graph(graph, task_keys(graph), state.values)

    def manifest() -> RunManifest:
        return store.manifest(store.resolve(rerun_of))

    kept = await asyncio.to_thread(manifest)
    steps = plan_rerun(graph, prints, kept, rerun, from_task)
    await read_kept(store, steps, decode=False)  # a result refused runs: what it takes is needed
    loops, _ = await read_kept(store, reused_loops(steps), decode=True)
    going_on = {id(step.node) for step, value in loops if first_jump(step.node, value)}
    skip_not_needed(graph, steps, going_on)
    selectors, _ = await read_kept(store, reused_selectors(graph, steps), decode=True)
    skip_not_routed(state, steps, selectors)
    await plan_items(store, state, prints, kept, steps, rerun)
    return [step.public() for step in steps]


@dataclass(frozen=True, slots=True, eq=False)
class RunHost:
    """What an engine gives each of its runs: what outlives a run.

    Its settings as they stand when the run starts, its counters and events, its connector
    (and the link context made for it), its executors (``placement``), system resources
    (``capacity``) and registered ``resources``, its results store and the reruns live in it,
    and where it finds its live runs by id (``runs``, ``managers``; ``ended``: those ended
    lately, whose late decisions it still answers). ``manage``: whether a run connects and
    disconnects the connector itself, asked as it starts.
    """

    events: EventBus
    stats: EngineStats
    connector: Connector | None
    link: Callable[[Connector], LinkContext]
    org_id: str
    project_id: str
    topic_prefix: str
    tracer_provider: TracerProvider | None
    logs: LogForwarding | None
    max_concurrency: int
    max_constraints: int
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    hold_defaults: HoldDefaults
    capacity: Capacity
    placement: Placement
    resources: Mapping[str, Resource]
    results: ResultStore | None
    reruns: LiveReruns
    dashboard_url: str | None
    shutdown_timeout: float
    manage: Callable[[Connector], bool]
    decide: Callable[[DecisionRequest], DecisionReply | None]
    runs: dict[str, Run]
    managers: dict[str, ConstraintManager]
    ended: EndedRuns


class RunLife:
    """One run, from its prepared graph to its end: :meth:`live` runs it and gives its target's
    results (or raises what ended it)."""

    def __init__(self, host: RunHost, request: RunRequest) -> None:
        self.host = host
        self.request = request
        self.graph = request.prepared.graph
        self.run_id = request.run_id
        self.name = request.name  # its own, or the run's it reruns, or its target's: once planned
        self.origin = request.origin  # with a rerun's lineage once planned
        self.results: RunResults | None = None
        self.lineage: Lineage | None = None  # a rerun's, once planned
        self.resources: dict[str, Resource] = {}
        self.state: RunState  # the run's state of its graph, its params bound: made by _plan
        # made with its Run, closed with it: its constraints, its tracing, its log forwarding
        self.manager: ConstraintManager
        self.tracing: RunTrace | None = None
        self.logs: RunLogs | None = None

    async def live(self) -> Any:
        """Bind, check and plan the run, announce it, then start, run and close it. Only a
        ``direct`` run (``Engine.run``'s) prints its start line where logging shows nothing: a
        served run's id goes to whoever asked for it."""
        await self._plan()
        announce_run(self.run_id, self.name, self.host.dashboard_url, direct=self.request.direct)
        results, origin, again = self.results, self.origin, self.lineage
        if results is not None:  # its journal's head: a run whose engine dies is carried on
            results.begin(
                name=self.name,
                workflow=origin.workflow if origin is not None else None,
                params=origin.params if origin is not None else None,
                rerun_of=again.rerun_of if again is not None else None,
                root_run=again.root_run if again is not None else self.run_id,
                origin=origin,
                source=None if self.host.connector is None else self.host.connector.source_id,
            )
        try:
            return await self._run()
        finally:
            if self.lineage is not None:
                self.host.reruns.end(self.lineage)

    async def _plan(self) -> None:
        """Its graph bound to its params and checked against the engine's resources and
        executors, its name, its results and, for a rerun, what it reuses and its lineage."""
        host, graph, target = self.host, self.graph, self.request.prepared.target
        state = self.state = RunState(graph, self.request.params)
        resources = self.resources = dict(host.resources)  # the run's, as registered now
        if SIGNALS in graph.resources and SIGNALS not in resources:  # cs.recv's, where used
            resources[SIGNALS] = signals(
                host.connector, host.org_id, host.project_id, host.topic_prefix, host.stats
            )
        check_resources(graph, resources)
        host.placement.check(graph)
        self.name = run_name(target, self.request.name)
        rerun_of = self.request.rerun_of
        store = host.results if rerun_of is None else rerun_store(host.results, rerun_of)
        if graph.cached and not self.request.prepared.cache_checked:
            check_cache(graph, store)
        if store is None:
            return
        keys = task_keys(graph)
        prints = fingerprint_graph(graph, keys, state.values)
        results = RunResults(store, self.run_id, state, prints, host.stats)
        self.results = results
        if rerun_of is None:
            return
        again = self.lineage = await host.reruns.prepare(
            results, graph, rerun_of, self.request.rerun, self.request.from_task, self.run_id
        )
        if self.origin is not None and self.origin.carried_on_from == again.rerun_of:
            results.remember(again.manifest)  # it goes on from what the lost run knew
        self.origin = msgspec.structs.replace(
            self.origin or RunOrigin(), rerun_of=again.rerun_of, root_run=again.root_run
        )
        if self.request.name is None and again.manifest.name is not None:
            self.name = again.manifest.name  # a rerun goes on under its run's name

    async def _run(self) -> Any:
        """Start the run (its constraints, tracing, log forwarding and wiring, ``RunStarted``),
        run its tasks, and close it whatever ended it."""
        host, graph, run_id = self.host, self.graph, self.run_id
        host.stats.runs += 1
        run = self._make_run()
        host.runs[run_id] = run
        shape = wire_graph(graph)  # what its start and snapshots tell of its graph
        connector = host.connector
        wiring: RunWiring | None = None
        started = False
        status: Any = "Failed"
        error = ""
        failure: BaseException | None = None
        try:
            if connector is not None:
                wiring = RunWiring(
                    host.link(connector),
                    run,
                    name=self.name,
                    origin=self.origin,
                    graph=shape,
                    manage=host.manage(connector),
                    decide=host.decide,
                )
                await wiring.open()
            host.events.emit(
                RunStarted(
                    run_id=run_id,
                    task_count=len(graph.nodes),
                    name=self.name,
                    origin=self.origin,
                    graph=shape,
                )
            )
            started = True
            await run.execute()
            status, error = "Succeeded", ""
            return target_results(self.request.prepared.target, self.state)
        except RunCancelledError as exc:
            status, error, failure = "Cancelled", describe(exc), exc
            raise
        except asyncio.CancelledError as exc:
            status, error, failure = "Cancelled", "CancelledError: the run was cancelled", exc
            raise
        except BaseException as exc:
            status, error, failure = "Failed", describe(exc), exc
            raise
        finally:
            await self._close(run, wiring, started, status, error, failure)

    def _make_run(self) -> Run:
        """The run's :class:`Run`, with its constraints (``manager``), its tracing and its log
        forwarding (``logs``), each kept here to be closed with it."""
        host, graph, run_id, again = self.host, self.graph, self.run_id, self.lineage
        self.manager = manager = ConstraintManager(
            clock=host.clock,
            monotonic=host.monotonic,
            stats=host.stats,
            max_constraints=host.max_constraints,
            prefix=host.topic_prefix,
            place=(host.org_id, host.project_id),
        )
        host.managers[run_id] = manager
        self.tracing = tracing = start_run(
            run_id, len(graph.nodes), host.org_id, host.project_id, host.tracer_provider
        )
        connector = host.connector
        if connector is not None and host.logs is not None:
            self.logs = RunLogs(
                connector,
                host.logs,
                run_id=run_id,
                org_id=host.org_id,
                project_id=host.project_id,
                prefix=host.topic_prefix,
                trace_id=tracing.trace_id if tracing is not None else None,
            )
        return Run(
            self.state,
            run_id,
            emit=host.events.emit,
            emit_aside=host.events.emit_aside,
            manager=manager,
            max_concurrency=host.max_concurrency,
            tracing=tracing,
            hold=host.hold_defaults,
            stats=host.stats,
            source=connector.source_id if connector is not None else "",
            results=self.results,
            logs=self.logs,
            root_run=again.root_run if again is not None else None,
            resources=self.resources,
            capacity=host.capacity,
            cache=RunCache(self.results, host.stats) if graph.cached else None,
            executors=host.placement,
        )

    async def _close(
        self,
        run: Run,
        wiring: RunWiring | None,
        started: bool,
        status: Any,
        error: str,
        failure: BaseException | None,
    ) -> None:
        """Close the run however it ended (``status``, ``error``, what raised): its engine lets
        go of it, its manifest is written, ``RunFinished`` said (where ``RunStarted`` was), its
        trace and its wiring ended."""
        host, run_id, origin, again = self.host, self.run_id, self.origin, self.lineage
        results, logs = self.results, self.logs
        host.runs.pop(run_id, None)
        host.ended.ended(run.held.ended())
        self.manager.close()
        host.managers.pop(run_id, None)
        if wiring is not None:
            await wiring.close_logs()
        closing: asyncio.Future[None] | None = None
        try:
            if results is not None:  # the run's results written, then its manifest
                failed = {id(node) for node, _ in run.failures}
                closing = asyncio.ensure_future(
                    results.close(
                        status,
                        results.states(failed),
                        name=self.name,
                        workflow=origin.workflow if origin is not None else None,
                        params=origin.params if origin is not None else None,
                        rerun_of=again.rerun_of if again is not None else None,
                        root_run=again.root_run if again is not None else run_id,
                        origin=origin,
                    )
                )
                # Its end waits for its manifest (whoever sees a run end may rerun it at
                # once), but no longer than shutdown_timeout: a hung store must not leave
                # the run shown RUNNING.
                await asyncio.wait({closing}, timeout=host.shutdown_timeout)
        finally:
            if started:
                logged = logs.numbered if logs is not None else None
                host.events.emit(
                    RunFinished(run_id=run_id, status=status, error=error, log_lines=logged)
                )
        if closing is not None:
            await closing
        if self.tracing is not None:
            self.tracing.end(status, failure)
        if wiring is not None:
            await wiring.close(status)
