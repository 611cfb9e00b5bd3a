"""Runs that outlive their engine: when a serving process dies while runs it started are live,
a server of the same workflows carries each on from what it kept (once across the servers
that share a results store: its start is claimed there, as a request's is)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol, TypeAlias

from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import MAX_PROMPT_LENGTH, ServedRun

from .._steps import explain
from ..results._results import CLAIM_FRESH, UNFINISHED, Claim, ResultStore
from ..workflow._gate import gate
from ..workflow._graph import build_graph, task_keys
from ._serve_requests import CARRY_REQUEST_PREFIX

__all__ = [
    "DEFAULT_MAX_CARRY_ONS",
    "CarryOnCounts",
    "carry_claim",
    "carry_request_id",
    "CarryOns",
    "LostRun",
    "OnEngineLost",
    "engine_lost_policies",
    "fence",
    "carried_target",
]

_log = logging.getLogger("cascade.runtime.serve")

OnEngineLost: TypeAlias = Literal["carry-on", "hold", "none"]
"""What a server does with a live run of a workflow it serves whose engine died: carry it on
from what it kept, hold its carry-on for a person's decision (carry on, or abandon), or leave
it lost."""
_POLICIES = ("carry-on", "hold", "none")
DEFAULT_MAX_CARRY_ONS = 3
"""How many times a run's line is carried on at most: a run that kills its engine each time is
left lost after that, said why."""
_DONE_KEPT = 10_000  # runs whose loss was acted on, remembered (a will heard twice acts once)


def carry_request_id(run_id: str, generation: int = 1) -> str:
    """The start request id a carry-on of ``run_id`` is claimed as, in the shared store:
    ``carry-{run}``, then ``carry-{run}-{n}`` for the claim that takes over the one before."""
    claim = f"{CARRY_REQUEST_PREFIX}{run_id}"
    return claim if generation == 1 else f"{claim}-{generation}"


def carry_claim(results: ResultStore, run_id: str) -> Claim | None:
    """The claim of the carry-on of ``run_id`` that holds now (the last taken over), or
    ``None`` where none was taken."""
    found, generation = None, 1
    while (held := results.start_claim(carry_request_id(run_id, generation))) is not None:
        found, generation = held, generation + 1
    return found


class LostRun:
    """A run to carry on: its id, the engine that died (``source``), its workflow, where it
    came from (``origin``, from its journal), and whether its carry-on waits for a person
    (``hold``)."""

    __slots__ = ("generation", "hold", "kept", "origin", "run_id", "source", "workflow")

    def __init__(
        self,
        run_id: str,
        source: str,
        workflow: str,
        origin: RunOrigin,
        *,
        hold: bool = False,
        kept: frozenset[str] = frozenset(),
        generation: int = 1,
    ) -> None:
        self.run_id = run_id
        self.generation = generation
        """Which claim of its carry-on this server takes (a later one: an earlier claimant
        died before its run began)."""
        self.source = source
        self.workflow = workflow
        self.origin = origin
        self.hold = hold
        self.kept = kept
        """The stable keys of the tasks whose results the lost run kept (its journal's)."""


def carried_target(target: Any, lost: LostRun) -> Any:
    """``target`` as the carry-on of ``lost`` runs it (its graph looked at once):

    - each task that declares itself unsafe to repeat (``@task(repeatable=False)``) and may
      have been in flight when ``lost``'s engine died (its result not kept, every task it
      needs kept) comes after a gate (``may_repeat``) that asks whether to run it again:
      completed, it runs; failed or skipped, it and what needs it are skipped;
    - where ``lost.hold`` says so, every task comes after a gate (``carry_on``) that asks
      whether to carry ``lost`` on: completed, the carry-on runs what is left; failed, it is
      abandoned (its tasks skipped). What the lost run finished is reused, gate or not."""
    graph = build_graph(target)
    held: tuple[Any, ...] = ()
    if lost.hold:
        prompt = (
            f"run {lost.run_id} of {lost.workflow} lost its engine {lost.source}: carry it on? "
            "complete to carry it on, fail to abandon it"
        )
        held = (gate(prompt[:MAX_PROMPT_LENGTH], name="carry_on"),)
    keys = task_keys(graph)
    key_of = {id(node): key for node, key in zip(graph.nodes, keys, strict=True)}
    for node, key in zip(graph.nodes, keys, strict=True):
        node.lazy.after(*held)
        if node.lazy.task.repeatable or key in lost.kept:
            continue
        if any(key_of.get(id(dep)) not in lost.kept for dep in node.deps):
            continue  # something it needs was not done: it never started
        prompt = (
            f"task {node.lazy.name} ({key}) of run {lost.run_id} may have run when its engine "
            f"{lost.source} died: run it again? complete to run it, fail or skip not to"
        )
        asked = gate(prompt[:MAX_PROMPT_LENGTH], name="may_repeat").after(*held)
        node.lazy.after(asked)
    return target


def engine_lost_policies(
    on_engine_lost: OnEngineLost | Mapping[str, OnEngineLost], workflows: Mapping[str, object]
) -> dict[str, OnEngineLost]:
    """Each served workflow's policy: one for all, or one a workflow (the others ``none``);
    ``ValueError`` for a policy that is none, or a workflow not served."""
    if isinstance(on_engine_lost, str):
        given: Mapping[str, str] = dict.fromkeys(workflows, on_engine_lost)
    else:
        given = on_engine_lost
        unknown = sorted(set(given) - set(workflows))
        if unknown:
            raise ValueError(f"on_engine_lost names workflows not served: {', '.join(unknown)}")
    policies: dict[str, OnEngineLost] = {}
    for name in workflows:
        policy = given.get(name, "none")
        if policy not in _POLICIES:
            raise ValueError(
                f"on_engine_lost for {name} is {policy!r}: one of {', '.join(_POLICIES)}"
            )
        policies[name] = policy  # type: ignore[assignment] # one of _POLICIES
    return policies


class CarryOnCounts(Protocol):
    """Where carry-ons are counted (:class:`~cascade.runtime.EngineStats`)."""

    runs_carried_on: int
    runs_left_lost: int
    carry_ons_refused: int


class CarryOns:
    """Acts on the runs of dead engines (:meth:`lost`): each one of a workflow whose policy is
    ``carry-on``, begun (it has a journal in ``results``), unfinished and run by the engine
    that died (its journal's ``source``), is handed to ``carry(lost)``, which starts its
    carry-on or raises why not (another server took it). A run whose journal names another
    engine is not carried on (an announcement is its server's word only for its own runs:
    any engine login of the org may announce another's run and go offline): said in a
    warning and counted in ``carry_ons_refused``; the death of the engine that ran it is
    acted on still.

    A run of a schedule's slot whose carry-on is under way here counts as that schedule's
    live run (:meth:`scheduled`) from the moment its loss is heard until its carry-on has
    started (then it is one of the server's runs) or is not to be (``changed`` is called
    then), so that no slot starts beside it against the schedule's overlap; a slot whose
    overlap cancels it (:meth:`abandon`) leaves it lost, or has ``cancel(run_id, reason)``
    stop its carry-on once started."""

    def __init__(
        self,
        policies: Mapping[str, OnEngineLost],
        results: ResultStore | None,
        carry: Callable[[LostRun], Awaitable[str]],
        *,
        own_runs: Callable[[], set[str]],
        stats: CarryOnCounts,
        max_carry_ons: int = DEFAULT_MAX_CARRY_ONS,
        changed: Callable[[], None] = lambda: None,
        cancel: Callable[[str, str], object] = lambda *_: None,
    ) -> None:
        if max_carry_ons < 0:
            raise ValueError(f"max_carry_ons must be at least 0, not {max_carry_ons}")
        self._policies = policies
        self._results = results
        self._carry = carry
        self._own_runs = own_runs
        self._max = max_carry_ons
        self._done: dict[tuple[str, str], None] = {}  # (source, run id): acted on
        self._acting: dict[str, int] = {}  # run id -> its tasks under way (one a source)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = stats
        self._changed = changed
        self._pending: dict[str, ServedRun] = {}  # the carry-ons under way here, by lost run
        self._abandoned: dict[str, str] = {}  # pending ones a slot's overlap cancelled: why
        self._cancel = cancel

    def abandon(self, run_id: str, reason: str) -> bool:
        """Whether ``run_id``'s carry-on is under way here: it is abandoned then, for
        ``reason`` (a later slot's overlap ``cancel``)."""
        if run_id not in self._pending:
            return False
        self._abandoned[run_id] = reason
        return True

    def scheduled(self, schedule: str, workflow: str) -> list[str]:
        """The lost runs of ``schedule`` (of ``workflow``) whose carry-on is under way here."""
        return [
            run_id
            for run_id, entry in self._pending.items()
            if (entry.schedule, entry.workflow) == (schedule, workflow)
        ]

    def lost(self, source: str, runs: list[ServedRun]) -> None:
        """``source`` died with ``runs`` live (its last announcement's): act on each, once a
        source (the death of the engine that ran it is acted on whoever announced it
        before)."""
        own = self._own_runs()
        for entry in runs:
            if (source, entry.run_id) in self._done or entry.run_id in own:
                continue
            if self._policies.get(entry.workflow, "none") == "none":
                continue
            self._done[(source, entry.run_id)] = None
            while len(self._done) > _DONE_KEPT:
                del self._done[next(iter(self._done))]
            self._pending.setdefault(entry.run_id, entry)
            self._acting[entry.run_id] = self._acting.get(entry.run_id, 0) + 1
            task = asyncio.get_running_loop().create_task(
                self._carry_on(source, entry), name="cascade-carry-on"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _carry_on(self, source: str, entry: ServedRun) -> None:
        try:
            await self._carry_on_here(source, entry)
        finally:  # carried on here (one of this server's runs now), elsewhere, or not at all
            self._acted(entry.run_id)

    def _acted(self, run_id: str) -> None:
        """One death of ``run_id`` acted on: once no other is (another source's), it is no
        longer pending here."""
        acting = self._acting.pop(run_id, 1) - 1
        if acting:
            self._acting[run_id] = acting
            return
        self._abandoned.pop(run_id, None)
        pending = self._pending.pop(run_id, None)
        if pending is not None and pending.schedule is not None:
            self._changed()

    async def _carry_on_here(self, source: str, entry: ServedRun) -> None:
        results = self._results
        if results is None:
            self._stats.runs_left_lost += 1
            _log.warning(
                "run %s of %s died with its engine %s; it is not carried on: this engine keeps "
                "no results (Engine(results=...), a store every server reaches)",
                entry.run_id,
                entry.workflow,
                source,
            )
            return
        try:
            run_id = await asyncio.to_thread(results.resolve, entry.run_id)
            manifest = await asyncio.to_thread(results.manifest, run_id)
        except Exception as exc:  # queued, never begun; another store's; unreadable
            _log.info("run %s of %s is not carried on: %s", entry.run_id, source, explain(exc))
            return
        if manifest.status != UNFINISHED:
            return  # it ended before its engine died
        if manifest.source != source:
            self._stats.carry_ons_refused += 1
            _log.warning(
                "run %s of %s is not carried on: %s went offline with it announced live, but "
                "its journal says %s ran it: only the engine that runs a run can lose it",
                run_id,
                entry.workflow,
                source,
                "no engine" if manifest.source is None else manifest.source,
            )
            return
        origin = manifest.origin or RunOrigin(workflow=entry.workflow, params=manifest.params)
        if origin.carry_ons >= self._max:
            self._stats.runs_left_lost += 1
            _log.warning(
                "run %s of %s died with its engine %s; it is not carried on: its line was "
                "carried on %d times already (max_carry_ons), each time its engine died",
                run_id,
                entry.workflow,
                source,
                origin.carry_ons,
            )
            return
        generation = await self._generation(results, run_id)
        if generation is None:
            return  # another server carries it on
        hold = self._policies.get(entry.workflow) == "hold"
        try:
            lost = LostRun(
                run_id,
                source,
                entry.workflow,
                origin,
                hold=hold,
                kept=frozenset(manifest.tasks),
                generation=generation,
            )
            abandoned = self._abandoned.get(entry.run_id)
            if abandoned is not None:
                self._stats.runs_left_lost += 1
                _log.warning("run %s of %s is not carried on: %s", run_id, source, abandoned)
                return
            carried_as = await self._carry(lost)
        except Exception as exc:  # another server took it first, or it cannot start here
            _log.info("run %s is not carried on here: %s", run_id, explain(exc))
            return
        abandoned = self._abandoned.get(entry.run_id)
        if abandoned is not None:
            self._cancel(carried_as, abandoned)
        self._stats.runs_carried_on += 1
        _log.warning(
            "carried on run %s of %s as %s%s: its engine %s died",
            run_id,
            entry.workflow,
            carried_as,
            ", held for a decision (its task carry_on)" if hold else "",
            source,
        )

    async def _generation(self, results: ResultStore, run_id: str) -> int | None:
        """Which claim of the carry-on of ``run_id`` to take (:func:`carry_request_id`): the
        first one not taken; past one whose run never began though its claimant took it
        :data:`CLAIM_FRESH` seconds ago (it died between the two: its claim is taken over),
        waited for until then. ``None``: another server's carry-on of it began."""
        generation = 1
        while True:
            request_id = carry_request_id(run_id, generation)
            held = await asyncio.to_thread(results.start_claim, request_id)
            if held is None:
                return generation
            while not await asyncio.to_thread(results.began, held.run_id):
                wait = held.at + CLAIM_FRESH - time.time()
                if wait <= 0:
                    _log.warning(
                        "run %s's carry-on was claimed by %s at %s, whose run never began: "
                        "taken over",
                        run_id,
                        held.source,
                        time.ctime(held.at),
                    )
                    break
                await asyncio.sleep(min(wait, CLAIM_FRESH))
            else:
                return None
            generation += 1

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def fence(
    store: ResultStore | None,
    me: str,
    run_ids: list[str],
    cancel: Callable[..., object],
) -> None:
    """Back on the broker: stop each of ``run_ids`` (server ``me``'s) that another server
    carried on meanwhile (the broker took ``me`` for dead: cut off past its keepalive), saying
    why, through ``cancel`` (the engine's)."""
    if store is None:
        return
    for run_id in run_ids:
        try:
            claim = await asyncio.to_thread(carry_claim, store, run_id)
        except Exception as exc:  # the store: unreachable now; the next connection asks
            _log.warning("cannot tell whether run %s was carried on: %s", run_id, explain(exc))
            return
        if claim is None or claim.source == me:
            continue
        reason = (
            f"carried on as {claim.run_id} by {claim.source} while this engine was cut off "
            "from the broker"
        )
        _log.warning("stopping run %s: %s", run_id, reason)
        cancel(run_id, issued_by=me, reason=reason)
