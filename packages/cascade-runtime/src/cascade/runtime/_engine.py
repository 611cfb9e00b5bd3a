"""The engine: runs a graph of tasks, publishes its events, and obeys live constraints."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from cascade.connector_kit import default_org_id, default_project_id
from cascade.interfaces import DEFAULT_PREFIX, Connector, Constraint, validate_id, validate_prefix
from cascade.interfaces.commands import Decide, DecisionReply, DecisionRequest
from cascade.interfaces.serving import PlanStep
from cascade.interfaces.wire import Decision, RerunMode

from ._ended_runs import EndedRuns
from ._errors import DependencyMissingError
from ._events import EventBus
from ._run import CancelReport, HoldDefaults, Run
from ._run_life import (
    Prepared,
    RunHost,
    RunLife,
    RunRequest,
    plan_rerun_of,
    prepare,
    rerun_store,
)
from ._run_notice import dashboard_address
from ._sigterm import SIGTERM_REASON, stop_on_sigterm
from ._stats import EngineStats
from .constraints._capacity import Capacity
from .constraints._constraints import DEFAULT_MAX_CONSTRAINTS, ConstraintManager
from .executors._executor import Executor
from .executors._placement import Placement
from .link._control_link import DEFAULT_CONNECT_WAIT
from .link._link_context import LinkContext
from .logs._logs import LogForwarding
from .results._lineage import LiveReruns
from .results._rerun import check_rerun
from .results._results import ResultStore, open_store
from .serve._carry_on import DEFAULT_MAX_CARRY_ONS, OnEngineLost
from .workflow._resource import Resource, ResourceError
from .workflow._run_state import RunState, skipped_target
from .workflow._task import DEFAULT_HOLD_TIMEOUT, OnFailure, check_hold_options

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from .serve._schedule import Schedule
    from .serve._trigger import Trigger

__all__ = ["Engine"]

_log = logging.getLogger("cascade.runtime.engine")


class Engine:
    """Runs task graphs; observable and steerable through an optional connector.

    Without a connector the engine only emits events on :attr:`events`:
    ``engine.events.subscribe(handler)`` calls ``handler`` with every
    :data:`~cascade.runtime.Event` of every run from then on, synchronously on the engine's
    hot path (so it must be quick; one that raises is logged and isolated), and returns a
    function that stops it. With one, each run connects it (unless it is already connected,
    in which case it is left connected), publishes the run's events and heartbeats as
    docs/protocol.md telemetry, and subscribes to ``{topic_prefix}/constraints/#``:
    retained constraints are applied before the first task starts, and later ones as they
    arrive.

    :meth:`run` runs a target; :meth:`cancel` and :meth:`decide` steer a live run;
    :meth:`plan` tells what a rerun would do; :meth:`serve` runs named workflows on request
    and on schedules. The engine keeps what outlives a run (its connector, executors,
    resources, results store, served workflows); each run's life is its own. Each option
    (``max_concurrency``, ``executor``, ``results``, ``on_failure``, ``system_resources``,
    ...) is described in the package README, "The engine's options"; a bad one raises
    ``ValueError`` or ``TypeError`` here.
    """

    def __init__(
        self,
        connector: Connector | None = None,
        *,
        max_concurrency: int = 64,
        org_id: str | None = None,
        project_id: str | None = None,
        topic_prefix: str | None = None,
        heartbeat_interval: float | None = 5.0,
        summaries: bool = True,
        logs: LogForwarding | None = LogForwarding(),  # noqa: B008 - frozen, shared safely
        manage_connection: bool | None = None,
        connect_wait: float = DEFAULT_CONNECT_WAIT,
        shutdown_timeout: float = 5.0,
        max_constraints: int = DEFAULT_MAX_CONSTRAINTS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tracer_provider: TracerProvider | None = None,
        on_failure: OnFailure = "fail",
        hold_timeout: float = DEFAULT_HOLD_TIMEOUT,
        hold_default: str = "fail",
        results: bool | str | os.PathLike[str] | ResultStore | None = None,
        dashboard_url: str | None = None,
        resources: Iterable[Resource] = (),
        executor: Executor | None = None,
        executors: Mapping[str, Executor] | None = None,
        system_resources: Mapping[str, float] | None = None,
    ) -> None:
        check_hold_options(on_failure, hold_timeout, hold_default, unset_ok=False)
        self.capacity = Capacity(system_resources)
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        if max_constraints < 0:
            raise ValueError(f"max_constraints must be >= 0, not {max_constraints}")
        self.connector = connector
        self.max_concurrency = max_concurrency
        self.org_id = validate_id(org_id, "org_id") if org_id else default_org_id()
        self.project_id = (
            validate_id(project_id, "project_id") if project_id else default_project_id()
        )
        self.topic_prefix = validate_prefix(
            topic_prefix or (connector.topic_prefix if connector else DEFAULT_PREFIX)
        )
        self.heartbeat_interval = heartbeat_interval
        self.summaries = summaries
        self.logs = logs
        self.manage_connection = manage_connection
        self.connect_wait = connect_wait
        self.shutdown_timeout = shutdown_timeout
        self.max_constraints = max_constraints
        self.events = EventBus()
        self.stats = EngineStats()
        self._clock = clock
        self._monotonic = monotonic
        self.tracer_provider = tracer_provider
        self._managers: dict[str, ConstraintManager] = {}  # a live run's, by run id, in order
        self._runs: dict[str, Run] = {}
        self._ended = EndedRuns(self._monotonic)  # whose late decisions it still answers
        self._serving = False  # serve() holds the connection: its runs leave it alone
        self.hold_defaults = HoldDefaults(on_failure, float(hold_timeout), hold_default)
        self.results: ResultStore | None = open_store(results)
        """Where results are kept (``None``: they are not)."""
        self._reruns = LiveReruns(self.stats)
        self.dashboard_url = dashboard_address(dashboard_url)
        """Where each run's page is said to be, ``{dashboard_url}/runs/{run_id}`` (``None``:
        nowhere)."""
        self._placement = Placement(executor, executors)
        self.executor: Executor = self._placement.default
        """Where plain-function tasks that name no executor run."""
        self.executors: Mapping[str, Executor] = self._placement.named
        """The executors tasks may name (``@task(executor=...)``)."""
        self._resources: dict[str, Resource] = {}
        for each in resources:
            self.register(each)

    def register(self, resource: Resource) -> None:
        """Make ``resource`` (what :func:`~cascade.runtime.resource` makes) the one tasks get
        when they inject its name, in the runs started from now on.

        A resource registered under a name already taken replaces the one before (as in the
        existing Cascade engine: a test registers a fake under the real one's name); a run
        keeps the resources registered when it started. Anything else than a resource:
        :class:`ResourceError` (a ``TypeError``)."""
        given: object = resource  # as called: any object
        if not isinstance(given, Resource):
            hint = " (decorate it with @resource)" if callable(given) else ""
            raise ResourceError(
                f"engine.register takes a resource, not {type(given).__name__}: {given!r}{hint}"
            )
        self._resources[resource.name] = resource

    @property
    def resources(self) -> dict[str, Resource]:
        """The resources registered now, by name (a copy: :meth:`register` changes them)."""
        return dict(self._resources)

    @property
    def system_resources(self) -> dict[str, float]:
        """The capacity of each system resource (``Engine(system_resources=...)``)."""
        return dict(self.capacity.total)

    @property
    def system_resources_in_use(self) -> dict[str, float]:
        """How much of each system resource the attempts running hold now (a thread that
        an attempt gave up on holds what it asked for until it ends)."""
        return self.capacity.in_use()

    @property
    def constraints(self) -> list[Constraint]:
        """The constraints in force in the current run (empty between runs).

        With several runs at once (:meth:`serve`), each applies the constraints on its own;
        this shows those of the latest one started.
        """
        managers = self._managers
        return managers[next(reversed(managers))].constraints if managers else []

    def cancel(
        self, run_id: str, *, issued_by: str | None = None, reason: str | None = None
    ) -> CancelReport | None:
        """Cancel the run ``run_id`` if this engine is running it; ``None`` if it is not.

        Nothing new starts; its running coroutine tasks are cancelled; its plain-function
        tasks already running in threads (or worker processes) are left to finish, since Python
        cannot stop a thread, and their results discarded (those an executor still queued are
        cancelled). Its :meth:`run` then raises
        :class:`~cascade.runtime.RunCancelledError` (``issued_by`` and ``reason`` in it),
        after publishing ``ENGINE_STOPPED`` with ``status: Failed`` and ``cancelled: true``.
        Returns what was cancelled (:class:`CancelReport`). ``issued_by`` and ``reason`` are
        kept as given: a cancel from the broker (``cascade cancel RUN_ID``, a
        :class:`~cascade.control.Controller`, which check them as
        :class:`~cascade.control.Cancel` does before they are sent) calls it with what the
        request claims. Call it on the engine's event loop.
        """
        run = self._runs.get(run_id)
        if run is None:
            return None
        report = run.cancel(issued_by, reason)
        if not report.already:
            _log.warning(
                "run %s cancelled%s%s: %d running tasks cancelled, %d left to finish in their "
                "threads or worker processes (results discarded), %d not started",
                run_id,
                f" by {issued_by}" if issued_by else "",
                f" ({reason})" if reason else "",
                len(report.cancelled),
                len(report.abandoned),
                report.not_started,
            )
        return report

    def decide(
        self,
        run_id: str,
        task: str,
        decision: Decision,
        *,
        attempt: int | None = None,
        result: Any = None,
        issued_by: str | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> DecisionReply | None:
        """Decide on a held task of the run ``run_id`` if this engine is running it; ``None``
        if it is not.

        ``task`` is the task's id (``load-3``) or name (``load``: refused ``ambiguous`` when
        several tasks of that name are held); ``decision``: ``"retry"`` (one more attempt,
        admitted like any; failing, it is held again at the next attempt), ``"skip"`` (it
        ends ``SKIPPED``, its dependents skipped, the run can still succeed: :meth:`run`
        gives ``None`` for its result), ``"complete"`` (it ends ``COMPLETED`` with
        ``result``, JSON of at most 16 KiB, which its dependents get) or ``"fail"`` (it
        ends ``FAILED``, as without a hold). ``attempt``: the held attempt meant (``None``:
        whichever is held). The first decision on a hold is applied; the answer
        (:class:`~cascade.interfaces.commands.DecisionReply`) says whether (``applied``) or why not
        (``already_decided`` with the earlier decision, ``not_held``, ``unknown_task``,
        ``ambiguous``, ``stale_attempt``). A ``request_id`` seen before is answered as it
        was, never applied twice (default: a new one). On a gate (:func:`~cascade.runtime.gate`,
        held from its start): ``"complete"`` approves it (its value ``result``, ``True`` when
        ``None``), ``"fail"`` rejects it, ``"skip"`` skips it, and ``"retry"`` is refused
        ``not_retryable``. Bad arguments raise :class:`~cascade.interfaces.commands.ControlError`
        (a ``ValueError``; ``cascade.control.ControlError`` too) naming the field, as
        :class:`~cascade.interfaces.commands.Decide` checks them. Call
        it on the engine's event loop; with a connector, ``cascade retry``, ``skip``,
        ``complete`` and ``fail`` call it over the broker (:class:`~cascade.control.Controller`).
        """
        run = self._runs.get(run_id)
        if run is None:
            return None
        asked = Decide(
            run_id=run_id,
            task=task,
            decision=decision,
            attempt=attempt,
            result=msgspec.UNSET if result is None and decision != "complete" else result,
            reason=reason,
        )
        return run.decide(asked.wire_request(issued_by=issued_by, request_id=request_id))

    def _decide(self, request: DecisionRequest) -> DecisionReply | None:
        """A decision request from the broker (the run's ``CommandListener``), on a live run or
        one that ended lately (answered, never applied: a decision can still be on its way
        when another ends the run)."""
        run = self._runs.get(request.run_id)
        if run is not None:
            return run.decide(request)
        ended = self._ended.get(request.run_id)
        return None if ended is None else ended.answer_late(request)

    async def run(
        self,
        target: Any,
        *,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        rerun_of: str | None = None,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
    ) -> Any:
        """Run ``target`` and return its result.

        ``target`` is a lazy result, or a list, tuple or dict of them (the
        result has the same shape). Raises :class:`InvalidTargetError` or
        :class:`CycleError` before anything runs, :class:`TaskFailedError`
        if a task failed, :class:`DependencyMissingError` if none failed but the target (or an
        item of it) was skipped and so has no result (the run itself ended ``Succeeded``),
        :class:`RunCancelledError` if :meth:`cancel` cancelled it, and
        re-raises ``CancelledError`` if the task awaiting it is cancelled. Either way the
        run emits ``RunFinished`` with status ``Cancelled``, published as ``ENGINE_STOPPED``
        ``Failed`` with ``cancelled: true`` and the error (``RunCancelledError: ...`` or
        ``CancelledError: ...``). A task held for a decision (``on_failure="hold"``) keeps the
        run going until a decision (:meth:`decide`) or its deadline ends the hold.

        At its start (its graph checked, a rerun's stored run found) the run logs which run it
        is, at ``INFO`` on ``cascade.runtime.engine``: ``run 3f2a... (nightly) started``, and
        its page where the engine knows its dashboard (``dashboard_url``). Where no logging is
        configured (no handler would get the line, so Python's last resort would show
        warnings only), it also prints that line once on stderr, after ``cascade: ``.

        SIGTERM (where the application handles it not itself: no handler of its own, on the
        main thread) cancels the run as :meth:`cancel` does, ``reason`` "the process got
        SIGTERM": its end is published and its engine's offline status sent, stamped when it
        stopped, instead of the process dying at once (which leaves only the broker's will,
        stamped when the connection was made); :meth:`run` then raises
        :class:`RunCancelledError`. Its handler goes when the run ends.

        ``params`` gives the target's :class:`Param` values by name (a parameter not given
        takes its default); :class:`ParamError` names one missing, unknown or of a type it
        does not take, before anything runs.
        ``name`` names the run (default: the name of the run it reruns, else the target's
        task name; a list's or dict's first item's), on its ``ENGINE_STARTED``, its snapshots
        and its source's summary.
        ``rerun_of``: a run id (or a unique prefix of at least 6 hex digits) whose manifest is
        in this engine's results store: the new run reuses every result of that run whose
        task's fingerprint still matches (the task ends ``COMPLETED`` at once with
        ``reused_from``, without running; its dependents get the stored value) and runs the
        rest; ``rerun="all"`` runs every task, ``rerun="from"`` also ``from_task`` (a task's
        id or name) and everything downstream of it. A stored result that is missing or
        unreadable: its task runs, and a warning says why. :meth:`plan` tells what a rerun
        would do. Raises :class:`RerunError` when the run is not in the store, results are
        not kept, or a rerun of the same run is live in this engine.
        """
        check_rerun(rerun, from_task)  # before its graph is built
        request = RunRequest(
            prepared=target if isinstance(target, Prepared) else prepare(target, check=False),
            params=params,
            name=name,
            rerun_of=rerun_of,
            rerun=rerun,
            from_task=from_task,
            direct=True,
        )
        caller = asyncio.current_task()

        def stop() -> None:  # SIGTERM: cancelled as a cancel does, or before it began
            if self.cancel(request.run_id, reason=SIGTERM_REASON) is None and caller is not None:
                caller.cancel()

        with stop_on_sigterm(stop):
            return await self._run_target(request)

    async def plan(
        self,
        target: Any,
        *,
        rerun_of: str,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[PlanStep]:
        """What ``run(target, rerun_of=..., rerun=..., from_task=...)`` would do with each task,
        in the graph's order, without running anything (a dry run): ``reuse`` its stored result
        (``from_run``: the run that computed it), ``run`` it or ``force`` it, and ``why`` (it had
        failed, was skipped, is new, its code or its input changed, it is not reusable, its
        stored result is missing, ...). The store is read in a thread. Raises
        :class:`RerunError` as :meth:`run` does.
        """
        check_rerun(rerun, from_task)
        return await self._plan(
            prepare(target, check=False),
            rerun_of=rerun_of,
            rerun=rerun,
            from_task=from_task,
            params=params,
        )

    async def _plan(
        self,
        prepared: Prepared,
        *,
        rerun_of: str,
        rerun: RerunMode = "failure",
        from_task: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[PlanStep]:
        """:meth:`plan` of a graph built already (a server's check built it, and hands it on to
        the run it starts): planned in a state of its own, the graph untouched."""
        check_rerun(rerun, from_task)
        state = RunState(prepared.graph, params)
        store = rerun_store(self.results, rerun_of)
        return await plan_rerun_of(state, store, rerun_of, rerun, from_task)

    def _link_context(self, connector: Connector) -> LinkContext:
        """What a link this engine opens through ``connector`` (a run's, or serving's) is
        given: the settings as they stand now, the counters, the events and ``cancel``."""
        return LinkContext(
            connector,
            org_id=self.org_id,
            project_id=self.project_id,
            topic_prefix=self.topic_prefix,
            heartbeat_interval=self.heartbeat_interval,
            summaries=self.summaries,
            connect_wait=self.connect_wait,
            shutdown_timeout=self.shutdown_timeout,
            stats=self.stats,
            events=self.events,
            cancel=self.cancel,
            ended_runs=self._ended,
        )

    async def _run_target(self, request: RunRequest) -> Any:
        """Run what ``request`` asks for (:meth:`run`'s, or a served run's): its target's
        results, or what ended it raised."""
        life = RunLife(self._host(), request)
        value = await life.live()
        if request.direct:
            skipped = skipped_target(request.prepared.target, life.state)
            if skipped is not None:
                where, node, first = skipped
                raise DependencyMissingError(
                    node.lazy.task_id, where, first.lazy.task_id, run_id=request.run_id
                )
        return value

    def _host(self) -> RunHost:
        """What a run starting now is given of this engine: what outlives it."""
        return RunHost(
            events=self.events,
            stats=self.stats,
            connector=self.connector,
            link=self._link_context,
            org_id=self.org_id,
            project_id=self.project_id,
            topic_prefix=self.topic_prefix,
            tracer_provider=self.tracer_provider,
            logs=self.logs,
            max_concurrency=self.max_concurrency,
            max_constraints=self.max_constraints,
            clock=self._clock,
            monotonic=self._monotonic,
            hold_defaults=self.hold_defaults,
            capacity=self.capacity,
            placement=self._placement,
            resources=dict(self._resources),  # the run's, as registered now
            results=self.results,
            reruns=self._reruns,
            dashboard_url=self.dashboard_url,
            shutdown_timeout=self.shutdown_timeout,
            manage=self._manages,
            decide=self._decide,
            runs=self._runs,
            managers=self._managers,
            ended=self._ended,
        )

    def _manages(self, connector: Connector) -> bool:
        """Whether a run starting now connects and disconnects ``connector`` itself: never
        while the engine serves, else as ``manage_connection`` says (by default, when it is not
        connected)."""
        if self._serving:
            return False
        if self.manage_connection is None:
            return not connector.is_connected
        return self.manage_connection

    async def serve(
        self,
        workflows: Mapping[str, Any],
        *,
        max_runs: int = 4,
        max_queued: int = 100,
        schedules: Mapping[str, Schedule] | None = None,
        on_engine_lost: OnEngineLost | Mapping[str, OnEngineLost] = "carry-on",
        max_carry_ons: int = DEFAULT_MAX_CARRY_ONS,
        triggers: Mapping[str, Trigger] | None = None,
    ) -> None:
        """Serve named workflows until cancelled: run each on a request over the broker, and
        each :class:`~cascade.runtime.Schedule` of ``schedules`` by itself.

        ``workflows`` maps a name (1 to 64 of ``A-Z a-z 0-9 _ -``) to a function, plain or
        ``async``, that takes the workflow's params as keyword arguments and returns a
        target; or to a target (a lazy result, or a list, tuple or dict of them), whose
        :class:`~cascade.runtime.Param` are its params (a request's converted and checked
        by them, as :meth:`run`'s ``params`` are, and bound in its run). The engine
        announces them, retained on
        ``{prefix}/served/{org}/{project}/{source}`` (its own org and project, as every topic
        of serving does, so a broker ACL binds each org's)
        (:class:`~cascade.interfaces.serving.ServedAnnouncement`: their params from each function's
        signature or each target's Params, its load, whether it takes shared requests), again
        whenever a run starts or ends, and clears it when it stops. It takes
        :class:`~cascade.interfaces.serving.StartRequest` s addressed to it
        (``{prefix}/start/{org}/{project}/{workflow}/{source}``) and, where the broker has shared
        subscriptions (tried once, at the first connection; not on RabbitMQ 3.x, which has
        none), those any server of the workflow in its org and project may take
        (``{prefix}/start/{org}/{project}/{workflow}``: the broker gives each to one). Each is
        answered once, on ``{prefix}/reply/{org}/{id}/{source}``: ``started`` with the new run's id
        (``queued`` when ``max_runs`` runs are running; beyond ``max_queued`` waiting it is
        refused, busy), ``planned`` for a dry run, or ``refused`` with why (a workflow it
        does not serve, params that do not fit the function or do not convert to its
        annotations, ``nightly: parameter n must be int, not str ("5")``; a function that
        raised, a rerun it cannot do or of a run already being rerun). A copy of a request gets the
        same answer; a malformed one none (counted in :attr:`stats`, logged at a limited
        rate). A run is named after its workflow, and its origin (workflow, params with
        their defaults, the request's id, who asked, why and when) is on its
        ``ENGINE_STARTED``. A run that fails ends as usual, and serving goes on.

        SIGTERM (where the application handles it not itself) stops it as a cancel does,
        and it returns: its offline status, sent as it disconnects, says when it stopped.

        Needs a connector; connects it unless it is connected (then leaves it so) or
        ``manage_connection`` says otherwise, and its runs neither connect nor disconnect
        it. Cancelled, it stops taking requests, cancels its runs (queued ones never
        start), clears its announcement and disconnects what it connected. One serving
        engine a connector: a second raises ``RuntimeError``, as ``serve`` called twice does.
        Bad arguments (a workflow's name, a function a request cannot call by keywords, a
        parameter's annotation that does not resolve or that no JSON converts to,
        ``max_runs`` below 1) raise ``ValueError`` or ``TypeError`` before anything starts.

        Each param is converted to its annotation before the function sees it (msgspec,
        strict: ISO text to a ``date``, a value to an ``Enum``, an object to a dataclass;
        ``"5"`` is no ``int``; every number within ``MAX_NUMBER``); the function gets the
        converted values and the run's origin their JSON. docs/protocol.md, "Served
        workflows", says which types.

        ``schedules`` maps a schedule's name (as a workflow's) to a :class:`Schedule` of a
        served workflow (its own name unless ``workflow=`` says): each of its slots is
        claimed by every server of it in the org and project, retained on
        ``{prefix}/schedule/{org}/{project}/{name}/{slot}``, and the server whose claim the
        broker ordered first starts the slot's run, as a start request whose id names the slot
        would (``sched-nightly-20261125T010000Z``), its origin naming the ``schedule`` and the
        slot (``scheduled_for``). The announcement lists the schedules, their next slot, the
        last claimed, and the slots skipped. docs/schedules.md says what happens on an outage
        and in a partition.

        ``on_engine_lost`` (one for every workflow, or a mapping of workflow to policy, the
        others ``"none"``): when a serving process of the same org and project dies while a
        run of a workflow it serves is live (its will, or its silence past its keepalive),
        ``"carry-on"`` carries the run on from what it kept in the results store (a store
        every server reaches): one server alone (its start claimed in the store) reruns it
        from its failure, with its params and origin, its finished tasks reused, those in
        flight run again; ``"hold"`` starts the same carry-on held for a person's decision (its
        first task, ``carry_on``, a gate: complete carries it on, fail abandons it); ``"none"``
        leaves it lost. A line carried on ``max_carry_ons``
        times is left lost. docs/durability.md says what runs twice and what is kept where.

        ``triggers`` maps a trigger's name (as a workflow's) to a :class:`Trigger` of a served
        workflow (its own name unless ``workflow=`` says): each event it hears (a run of the
        org and project that ended, a signal, a new file) starts one run across the servers of
        the trigger, claimed as a slot is (``{prefix}/trigger/{org}/{project}/{name}/{key}``),
        its origin naming the trigger and the event; docs/triggers.md says what waits, what is
        dropped and why.
        """
        if self.connector is None:
            raise ValueError("serve() needs a connector: requests come over the broker")
        from .serve._serve import Server  # serving's parts, imported by an engine that serves

        server = Server(
            self._link_context(self.connector),
            workflows,
            self._run_target,
            plan=self._plan,
            results=self.results,
            manage_connection=self.manage_connection,
            max_runs=max_runs,
            max_queued=max_queued,
            schedules=schedules,
            on_engine_lost=on_engine_lost,
            max_carry_ons=max_carry_ons,
            triggers=triggers,
        )
        if self._serving:
            raise RuntimeError("this engine is serving already")
        self._serving = True
        serving = asyncio.current_task()
        stopped = False

        def stop() -> None:  # SIGTERM: stopped as a cancel stops it, then return
            nonlocal stopped
            stopped = True
            if serving is not None:
                serving.cancel()

        try:
            with stop_on_sigterm(stop):
                await server.serve()
        except asyncio.CancelledError:
            if not stopped:
                raise
            if serving is not None and hasattr(serving, "uncancel"):  # 3.11+: count it undone
                serving.uncancel()
        finally:
            self._serving = False
