"""One run's results: each completed task's kept (off the loop), those a rerun reuses read,
and the run's manifest written at its end."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

import msgspec

from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import RerunMode

from .._stats import EngineStats
from .._steps import describe
from ..workflow._cache_policy import node_cache
from ..workflow._graph import Node, order_only
from ..workflow._run_state import RunState
from ..workflow._task import MapError, MappedLazyResult
from ._fingerprints import Prints, code_hash, fingerprint_call
from ._memory import NOTE_STATES, JournalNote, RunMemory
from ._on_worker import WorkerKeep
from ._rerun import Step, kept_results, map_items
from ._results import (
    SAME,
    CacheEntry,
    KeptTask,
    ManifestTask,
    ResultMissing,
    ResultStore,
    RunManifest,
    decode_kept,
    encode_msgpack,
)

__all__ = ["RunResults", "plan_items", "read_kept"]

_log = logging.getLogger("cascade.runtime.engine")
_sha256 = hashlib.sha256
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HAND_OVER = 0.05
_BATCH_BYTES = 1 << 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


async def read_kept(
    store: ResultStore, steps: list[Step], *, decode: bool, stats: EngineStats | None = None
) -> tuple[list[tuple[Step, Any]], list[Step]]:
    """Prove the stored result of every ``reuse`` step (:meth:`ResultStore.read_bytes`: its
    manifest's size and sha256, a regular file, within ``max_bytes``) and, with ``decode``,
    decode it: ``(step, value)`` for each proven (``None`` values without ``decode``), and the
    steps refused. Every other ``reuse`` step becomes ``force``, saying why, as do those not
    read within the store's ``read_timeout`` (one daemon thread reads them all: a file that
    never answers, as a hung network file system's, holds that thread, never the run);
    ``stats`` counts them in ``results_refused``."""
    wanted = [step for step in steps if step.action == "reuse"]
    if not wanted:
        return [], []
    lock = threading.Lock()
    read: list[tuple[Step, Any, str | None]] = []
    stopped = False
    finished: concurrent.futures.Future[None] = concurrent.futures.Future()

    def read_all() -> None:
        for step in wanted:
            assert step.fingerprint is not None
            try:
                data = store.read_bytes(step.fingerprint, size=step.size, sha256=step.sha256)
                value, why = (decode_kept(data) if decode else None), None
            except ResultMissing as exc:
                value, why = None, exc.detail
            except msgspec.DecodeError as exc:
                value, why = None, f"cannot be decoded: {exc}"
            except Exception as exc:  # the store's file system, in a way of its own
                value, why = None, f"cannot be read: {describe(exc)}"
            with lock:
                if stopped:
                    return
                read.append((step, value, why))
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # waited for no more
            finished.set_result(None)

    threading.Thread(target=read_all, name="cascade-results-read", daemon=True).start()
    with contextlib.suppress(asyncio.TimeoutError):  # what is read by then goes
        await asyncio.wait_for(asyncio.wrap_future(finished), store.read_timeout)
    with lock:
        stopped = True
        done = list(read)
    proven: list[tuple[Step, Any]] = []
    refused: list[Step] = []
    for step, value, why in done:
        if why is None:
            proven.append((step, value))
        else:
            step.refused(f"its stored result (from run {str(step.from_run)[:12]}) {why}")
            refused.append(step)
    answered = {id(step) for step, _, _ in done}
    for step in wanted:
        if id(step) not in answered:
            step.refused(
                f"its stored result (from run {str(step.from_run)[:12]}) was not read within "
                f"{store.read_timeout:g} s"
            )
            refused.append(step)
    if stats is not None:
        stats.results_refused += len(refused)
    return proven, refused


async def plan_items(
    store: ResultStore,
    state: RunState,
    prints: Prints,
    manifest: RunManifest,
    steps: list[Step],
    rerun: RerunMode,
) -> None:
    """Say on each map a rerun of ``manifest``'s run runs again (``steps``, its plan, proven)
    how many items it will make and reuse (:meth:`Step.say_items`), where that is known before
    the rerun: its lists given, or the values of results it reuses (read here, into ``state``,
    the plan's own); the items' kept results are proven as the rerun proves them.
    ``rerun="all"`` reuses no item."""
    if rerun == "all":
        return
    kept = kept_results(manifest)
    by_node = {id(step.node): step for step in steps}
    for index, step in enumerate(steps):
        node = step.node
        if step.action != "run" or type(node.lazy) is not MappedLazyResult or node.routers:
            continue
        upstream = [by_node[id(dep)] for dep in node.deps]
        if any(dep.action != "reuse" for dep in upstream):
            continue  # its lists come from tasks that run: known once they have
        proven, _ = await read_kept(store, upstream, decode=True)
        if len(proven) < len(upstream):
            continue
        for dep, value in proven:
            state.result[dep.node.index] = value
        try:
            items = map_items(node, state, prints.codes[index], kept)
        except MapError:
            continue  # the rerun fails the map, saying why
        await read_kept(store, items, decode=False)
        step.say_items(items, prints.keys[index], manifest)


class RunResults:
    """Keeps the results of one run's tasks in ``store`` by their fingerprints (``prints``, in
    graph order with ``keys``), and gives the tasks a rerun reuses their stored values;
    ``state``: the run's."""

    def __init__(
        self,
        store: ResultStore,
        run_id: str,
        state: RunState,
        prints: Prints,
        stats: EngineStats,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.state = state
        self.graph = graph = state.graph
        self.keys = prints.keys
        self.prints = prints
        self.stats = stats
        self.started = _now()
        self._index = {id(node): index for index, node in enumerate(graph.nodes)}
        self.nodes = list(graph.nodes)  # with the maps' items, as they are made
        # a rerun's: the results its run kept, by fingerprint, and how it reruns (rerun=...)
        self._before: dict[str, ManifestTask] | None = None
        self._rerun: RerunMode = "failure"
        self._forced: set[int] = set()  # the nodes rerun="from" forces
        self.reused: dict[int, tuple[Any, str]] = {}  # node -> (its stored value, from run)
        self.kept: dict[int, str] = {}  # node -> the run its result is kept from
        # node -> its kept result's size and sha256 (raw: the writer thread's, for each batch;
        # in hex where a rerun read it), made hex in the manifest
        self._proofs: dict[int, tuple[int, bytes | str]] = {}
        self.not_kept: dict[int, str] = {}  # node -> why not
        self.skipped: dict[int, str] = {}  # node -> why it ended SKIPPED, as its event said
        # a rerun's: node -> why it does not run (no task the rerun runs needs it)
        self.needless: dict[int, str] = {}
        self.refused: dict[int, str] = {}  # node -> why a rerun did not believe its kept result
        # node -> the decision its value comes from ("load completed by ops-1"): a node completed
        # by a decision, and every node computed from one, is never kept as if computed
        self.decided: dict[int, str] = {}
        # the nodes cached in the store (with_cache), their maps' items with them: their
        # results' cache entries are written (the writer thread reads it, the loop adds items)
        self._indexed = {id(node) for node in graph.cached if node_cache(node.lazy).policy is None}
        self.bytes_kept = 0
        self._max_bytes = store.max_bytes
        self._failed: dict[int, tuple[str, int]] = {}  # node -> why its write failed, its size
        self.written_by: dict[int, str] = {}  # node -> the Dask worker that wrote its result
        # results to write, handed to the writer thread in batches (every _HAND_OVER seconds,
        # or at _BATCH_BYTES): a thread woken for each would take the GIL from the loop as often
        # three lists, not a tuple a result: nothing more for the garbage collector to track
        self._batch: list[int] = []  # the nodes
        self._batch_fingerprints: list[str] = []
        self._batch_data: list[bytes] = []
        self._batch_bytes = 0
        # what the journal notes of attempts that failed, holds and decisions, with the batch
        self._notes: list[KeptTask] = []
        self.memory: RunMemory | None = None  # a carry-on's: what the run it carries on noted
        self.source: str | None = None  # the engine that runs it, once begun
        self._journaled = 0  # the journal's files written (the writer thread's)
        self._codes: dict[Any, str] = {}  # a loop's routes' tasks' code hashes, by function
        self._loop = asyncio.get_running_loop()

    def begin(
        self,
        *,
        name: str | None,
        workflow: str | None,
        params: dict[str, Any] | None,
        rerun_of: str | None,
        root_run: str | None,
        origin: RunOrigin | None,
        source: str | None,
    ) -> None:
        """Write the head of the run's journal, what it begins with and the engine that runs
        it (``source``), so that a run whose engine dies can be carried on (its journal then
        lists the results it kept), by a server that heard that engine die."""
        self.source = source
        began = RunManifest(
            run_id=self.run_id,
            status="Running",
            tasks={},
            name=name,
            workflow=workflow,
            params=params,
            rerun_of=rerun_of,
            root_run=root_run,
            started=self.started,
            origin=origin,
            source=source,
        )
        store = self.store

        def write() -> None:
            try:
                store.write_began(began)
            except Exception as exc:  # kept results stay kept; only a carry-on will not find them
                _log.warning("run %s's journal could not be begun: %s", self.run_id, describe(exc))

        store.submit(write)

    async def load(self, steps: list[Step], *, say: bool = True) -> list[Step]:
        """Read and prove the stored value of every ``reuse`` step (:func:`read_kept`); a step
        whose result is not to be believed becomes ``force`` and, with ``say``, the engine says
        why (else :meth:`say_refused` does, once the plan is whole). Returns the steps."""
        proven, refused = await read_kept(self.store, steps, decode=True, stats=self.stats)
        for step, value in proven:
            assert step.from_run is not None
            assert step.size is not None
            key = id(step.node)
            self.reused[key] = (value, step.from_run)
            self.kept[key] = step.from_run
            self._proofs[key] = (step.size, step.sha256 or "")
        for step in refused:
            self.refused[id(step.node)] = step.why
        if say:
            self.say_refused(refused)
        return steps

    def not_needing(self, steps: list[Step]) -> None:
        """The rerun does not run the tasks of ``steps`` made ``skip`` (not needed,
        :func:`~._rerun.skip_not_needed`): they end ``SKIPPED`` saying why, and a loop among
        them reuses nothing."""
        for step in steps:
            if step.action == "skip":
                key = id(step.node)
                self.needless[key] = step.why
                self.reused.pop(key, None)
                self.kept.pop(key, None)
                self._proofs.pop(key, None)

    def say_refused(self, steps: list[Step]) -> None:
        """Warn, for each of ``steps`` whose stored result was refused, what the rerun does
        instead and why: it runs again, or it is not run (not needed)."""
        for step in steps:
            if id(step.node) not in self.refused:
                continue
            lazy = step.node.lazy
            does = "is not run" if step.action == "skip" else "runs again"
            _log.warning(
                "task %s (%s) of run %s %s: %s",
                lazy.name,
                lazy.task_id,
                self.run_id,
                does,
                step.why,
            )

    def rerunning(self, manifest: RunManifest, rerun: RerunMode, steps: list[Step]) -> None:
        """This run reruns ``manifest``'s as ``rerun`` says (``steps``: its plan): the items its
        maps make are reused as its tasks are (:meth:`add_items`)."""
        self._before = kept_results(manifest)
        self._rerun = rerun
        self._forced = {id(step.node) for step in steps if step.action == "force"}

    def add_items(self, node: Node, items: list[Node]) -> list[Step]:
        """The map ``node`` made ``items``: their keys (the map's, ``[i]``) and fingerprints (as
        their task's called on their values), kept like any task's; for a rerun, the steps of
        those whose result its run kept, to :meth:`load` (a forced map's items are forced)."""
        prints = self.prints
        at = self._index[id(node)]
        key, code = prints.keys[at], prints.codes[at]
        reuse: list[Step] = []
        before = self._before
        forced = self._rerun == "all" or id(node) in self._forced
        for index, item in enumerate(items):
            fingerprint, why_not = fingerprint_call(item.lazy, code)
            self._index[id(item)] = len(prints.keys)
            prints.keys.append(f"{key}[{index}]")
            prints.codes.append(code)
            prints.fingerprints.append(fingerprint)
            prints.why_not.append(why_not)
            self.nodes.append(item)
            if before and fingerprint is not None and not forced:
                kept = before.get(fingerprint)
                if kept is not None:
                    reuse.append(Step(item, "reuse", "unchanged", kept))
            if forced:
                self._forced.add(id(item))
        if id(node) in self._indexed:  # a cached map's items are cached
            self._indexed.update(id(item) for item in items)
        return reuse

    def add_iteration(self, loop: Node, iteration: Node) -> Step | None:
        """Loop ``loop`` made ``iteration``: its key (the loop's, ``@n`` as in its id) and
        fingerprint (its task called on its values), kept like any task's; for a rerun, the
        step reusing its run's kept result where it kept one (a forced loop's are forced)."""
        prints = self.prints
        at = self._index[id(loop)]
        lazy = iteration.lazy
        task = lazy.task
        code = prints.codes[at] if task is loop.lazy.task else self._code(task.fn)
        fingerprint, why_not = fingerprint_call(lazy, code)
        self._index[id(iteration)] = len(prints.keys)
        prints.keys.append(f"{prints.keys[at]}@{lazy.task_id.rsplit('@', 1)[1]}")
        prints.codes.append(code)
        prints.fingerprints.append(fingerprint)
        prints.why_not.append(why_not)
        self.nodes.append(iteration)
        if self._rerun == "all" or id(loop) in self._forced:
            self._forced.add(id(iteration))
            return None
        kept = self._before.get(fingerprint) if self._before and fingerprint else None
        return None if kept is None else Step(iteration, "reuse", "unchanged", kept)

    def _code(self, fn: Any) -> str:
        code = self._codes.get(fn)
        if code is None:
            code = self._codes[fn] = code_hash(fn)
        return code

    async def load_items(self, steps: list[Step]) -> None:
        """:meth:`load` the kept results of a map's items (:meth:`add_items`), counted as a
        rerun's are (``EngineStats.results_reused``)."""
        before = len(self.reused)
        await self.load(steps)
        self.stats.results_reused += len(self.reused) - before

    def keep(self, node: Node, value: Any) -> str | None:
        """Keep ``node``'s result (encoded here, written in the store's thread); ``None``, or why
        it is not kept (logged once, at the task). The hot path of a run that keeps results."""
        key = id(node)
        index = self._index[key]
        fingerprint = self.prints.fingerprints[index]
        if self.decided and (upstream := self._decided_upstream(node)) is not None:
            self.decided[key] = upstream
            reason = f"decided upstream: {upstream}"
        elif fingerprint is None:
            reason = f"not reusable: {self.prints.why_not[index]}"
        else:
            data: bytes | None = None
            reason = ""
            if type(value) in SAME:  # decodes back as itself: encoded, not checked
                try:
                    data = encode_msgpack(value)
                except Exception:  # an int beyond msgpack's: store.encode says why
                    data = None
                else:
                    if len(data) > self._max_bytes:
                        data = None
            if data is None:
                data, reason = self.store.encode(value)
            if data is not None:
                self.kept[key] = self.run_id
                size = len(data)
                self.bytes_kept += size
                batch = self._batch
                if not batch and not self._notes:
                    self._loop.call_later(_HAND_OVER, self._hand_over)
                batch.append(key)
                self._batch_fingerprints.append(fingerprint)
                self._batch_data.append(data)
                self._batch_bytes += size
                if self._batch_bytes >= _BATCH_BYTES:
                    self._hand_over()
                return None
        self._not_kept(node, reason)
        return reason

    def on_worker(self, node: Node) -> WorkerKeep | bool:
        """How ``node``'s result is kept if its attempt runs on a Dask worker: written there (what
        to ship with it), ``True``: by the engine, from its value (a store in the engine's
        memory), ``False``: not at all (:meth:`keep` says why when it completes)."""
        fingerprint = self.prints.fingerprints[self._index[id(node)]]
        if fingerprint is None or (self.decided and self._decided_upstream(node) is not None):
            return False
        if self.store.shared_url is None:
            return True
        return WorkerKeep(self.store, fingerprint)

    def kept_by_worker(self, node: Node, keep: WorkerKeep, worker: str | None) -> str | None:
        """``node``'s attempt ran on the Dask ``worker`` (its address), which kept its result as
        ``keep`` asked and reported how: ``None``, or why it is not kept. The report is checked
        here (a size within ``max_bytes``, a sha256) and the file in the writer thread (there,
        as the engine sees the store, of the size reported) before the manifest names it with
        that sha256, which a rerun proves the file by; the worker is named in the manifest."""
        report = keep.report
        where = f"the Dask worker {worker or '(unknown)'}"
        if report is None:
            reason = f"{where} did not say whether it kept it"
        elif report.not_kept is not None:
            reason = str(report.not_kept)
        elif report.failed is not None:
            reason = f"it could not be written by {where}: {report.failed}"
        elif (
            type(report.size) is not int
            or not 0 <= report.size <= self._max_bytes
            or not isinstance(report.sha256, str)
            or not _SHA256.fullmatch(report.sha256)
        ):
            reason = f"{where} reported no size and sha256 of it that could be true"
        else:
            key = id(node)
            self.kept[key] = self.run_id
            self.bytes_kept += report.size
            if worker is not None:
                self.written_by[key] = worker
            size, sha256, fingerprint = report.size, report.sha256, keep.fingerprint
            self.store.submit(lambda: self._check_written(key, fingerprint, size, sha256, where))
            return None
        self._not_kept(node, reason)
        return reason

    def _check_written(
        self, key: int, fingerprint: str, size: int, sha256: str, where: str
    ) -> None:
        """In the writer thread: the file a worker wrote is in the store as the engine sees it,
        of the size it reported; then its proof is the manifest's (and its cache entry written)."""
        try:
            found = self.store.fs.info(self.store.result_path(fingerprint)).get("size")
        except Exception as exc:
            self._failed[key] = (
                f"{where} wrote it, but the engine does not find it in the store "
                f"({describe(exc)}): is the store shared with the workers?",
                size,
            )
            return
        if isinstance(found, int) and found != size:
            self._failed[key] = (
                f"{where} reported {size:,} bytes, the store holds {found:,}",
                size,
            )
            return
        self._proofs[key] = (size, sha256)
        if key in self._indexed:
            self._index_cached([key], [fingerprint], [size], [sha256])

    def forces(self, node: Node) -> bool:
        """Whether this run, a rerun, runs ``node`` whatever is kept (``rerun="all"``, or
        ``"from"`` a task upstream of it): its cache is not looked at either."""
        return id(node) in self._forced or (self._rerun == "all" and self._before is not None)

    def fingerprint(self, node: Node) -> str | None:
        """``node``'s fingerprint (``None``: it has none)."""
        return self.prints.fingerprints[self._index[id(node)]]

    def given_upstream(self, node: Node) -> str | None:
        """The decision (or cache policy) a value ``node`` would be computed from comes from,
        if any: such a value is never taken from the store's cache either."""
        return self._decided_upstream(node) if self.decided else None

    def cached(self, node: Node, entry: CacheEntry) -> None:
        """``node`` took the result ``entry`` names from the store's cache: its manifest row
        names that run and that file's proof, as a rerun's reuse does."""
        key = id(node)
        self.kept[key] = entry.run_id
        self._proofs[key] = (entry.size, entry.sha256)
        self.stats.results_cached += 1

    def refuse(self, node: Node, why: str) -> None:
        """The result the store's cache has for ``node`` is not taken (``why``): it runs, its
        manifest row and a warning say why, ``results_refused`` counts it."""
        self.refused[id(node)] = why
        self.stats.results_refused += 1
        lazy = node.lazy
        _log.warning(
            "task %s (%s) of run %s runs, its cached result not taken: %s",
            lazy.name,
            lazy.task_id,
            self.run_id,
            why,
        )

    def from_policy(self, node: Node, policy: object) -> str:
        """``node``'s value came from its cache policy, not from its code: it is not kept, nor
        is any result computed from it (as a decision's); why, for its event."""
        name = type(policy).__name__
        self.decided[id(node)] = f"{node.lazy.name} taken from its cache policy {name}"
        reason = f"taken from its cache policy ({name}): not computed"
        self.not_kept[id(node)] = reason
        self.stats.results_not_kept += 1
        return reason

    def given(self, node: Node, by: str | None) -> str:
        """``node`` was completed by a decision (``by``: who decided): its result was given,
        not computed, and is not kept, nor is any result computed from it (a rerun runs them
        all); why, for its event."""
        self.decided[id(node)] = f"{node.lazy.name} completed by {by or 'a decision'}"
        who = f" ({by})" if by else ""
        reason = f"completed by a decision{who}: its result was given, not computed"
        self.not_kept[id(node)] = reason
        self.stats.results_not_kept += 1
        return reason

    def _decided_upstream(self, node: Node) -> str | None:
        """The decision a value ``node`` was computed from comes from, if any."""
        decided = self.decided
        ordered = order_only(node, self.graph.same) if node.lazy.order else ()
        for dep in self.state.deps(node):  # a map's items with them
            if ordered and dep in ordered:  # run after it, not computed from it
                continue
            found = decided.get(id(dep))
            if found is not None:
                return found
        return None

    def states(self, failed: set[int]) -> dict[int, str]:
        """Each node's last state, by ``id``, for the manifest (``failed``: the nodes that
        failed)."""
        states = {}
        skipped = self.state.skipped
        for node in self.nodes:
            key = id(node)
            if key in self.kept or key in self.not_kept:
                states[key] = "COMPLETED"
            elif skipped[node.index]:
                states[key] = "SKIPPED"
            elif key in failed:
                states[key] = "FAILED"
            else:
                states[key] = "CANCELLED"
        return states

    def _not_kept(self, node: Node, reason: str) -> None:
        self.not_kept[id(node)] = reason
        stats = self.stats
        stats.results_not_kept += 1
        lazy = node.lazy
        before = stats.results_not_kept_by_task.get(lazy.name, 0)
        stats.results_not_kept_by_task[lazy.name] = before + 1
        # a served workflow's every run would say it again: once per task and engine is
        # enough, its COMPLETED event says why each time
        _log.log(
            logging.DEBUG if before else logging.WARNING,
            "the result of task %s (%s) of run %s is not kept: %s%s",
            lazy.name,
            lazy.task_id,
            self.run_id,
            reason,
            "" if before else " (said once per task: engine.stats.results_not_kept_by_task counts)",
        )

    def note(self, node: Node, note: JournalNote) -> None:
        """Journal ``note`` of ``node`` with the next batch (within 50 ms, in the writer
        thread): what a carry-on of this run goes on from (:meth:`remember`). Called where an
        attempt fails, a task is held or decided, never where one starts or completes."""
        if not self._batch and not self._notes:
            self._loop.call_later(_HAND_OVER, self._hand_over)
        lazy = node.lazy
        task = ManifestTask(name=lazy.name, task_id=lazy.task_id, state=NOTE_STATES[note.event])
        self._notes.append(KeptTask(key=self.keys[self._index[id(node)]], task=task, note=note))

    def remember(self, manifest: RunManifest) -> None:
        """This run carries on ``manifest``'s run, whose engine died: its tasks go on from what
        that run's journal noted of them (:attr:`memory`), each note checked first."""
        if manifest.notes:
            self.memory = RunMemory(manifest.run_id, manifest.notes, self.stats)

    def key(self, node: Node) -> str:
        """``node``'s stable task key (``name#n``, a map's item ``name#n[i]``)."""
        return self.keys[self._index[id(node)]]

    def _hand_over(self) -> None:
        batch = self._batch, self._batch_fingerprints, self._batch_data
        self._batch, self._batch_fingerprints, self._batch_data = [], [], []
        self._batch_bytes = 0
        notes, self._notes = self._notes, []
        if batch[0] or notes:
            self.store.submit(lambda: self._write(*batch, notes))

    def _write(
        self,
        nodes: list[int],
        fingerprints: list[str],
        encoded: list[bytes],
        notes: list[KeptTask],
    ) -> None:
        """In the writer thread."""
        store = self.store
        for key, fingerprint, data in zip(nodes, fingerprints, encoded, strict=True):
            try:
                store.write(store.result_path(fingerprint), data)
            except Exception as exc:
                self._failed[key] = (f"{type(exc).__name__}: {exc}", len(data))
        # the raw digests (half the time of hex ones): this thread holds the GIL the loop needs
        digests = [_sha256(data).digest() for data in encoded]
        self._proofs.update(zip(nodes, zip(map(len, encoded), digests, strict=True), strict=True))
        if self._indexed:
            sizes = [len(data) for data in encoded]
            self._index_cached(nodes, fingerprints, sizes, [digest.hex() for digest in digests])
        self._journal(nodes, fingerprints, encoded, digests, notes)

    def _journal(
        self,
        nodes: list[int],
        fingerprints: list[str],
        encoded: list[bytes],
        digests: list[bytes],
        notes: list[KeptTask],
    ) -> None:
        """Write the journal's lines of a batch just written, then its notes (in the writer
        thread)."""
        lines = []
        for key, fingerprint, data, digest in zip(
            nodes, fingerprints, encoded, digests, strict=True
        ):
            if key in self._failed:
                continue
            index = self._index[key]
            lazy = self.nodes[index].lazy
            task = ManifestTask(
                name=lazy.name,
                task_id=lazy.task_id,
                state="COMPLETED",
                fingerprint=fingerprint,
                code=self.prints.codes[index],
                from_run=self.run_id,
                size=len(data),
                sha256=digest.hex(),
            )
            lines.append(KeptTask(key=self.keys[index], task=task))
        lines += notes
        if not lines:
            return
        self._journaled += 1
        try:
            self.store.write_kept(self.run_id, self._journaled, lines)
        except Exception as exc:  # the results are kept; a carry-on would run these again
            _log.warning("run %s's journal could not be written: %s", self.run_id, describe(exc))

    def _index_cached(
        self, nodes: list[int], fingerprints: list[str], sizes: list[int], digests: list[str]
    ) -> None:
        """Write the cache entry of each result just written of a node cached in the store
        (in the writer thread, after the result's file: an entry names a file written)."""
        store, indexed, failed = self.store, self._indexed, self._failed
        at = time.time()
        for key, fingerprint, size, digest in zip(nodes, fingerprints, sizes, digests, strict=True):
            if key not in indexed or key in failed:
                continue
            name = self.nodes[self._index[key]].lazy.name
            entry = CacheEntry(run_id=self.run_id, at=at, size=size, sha256=digest, name=name)
            try:
                store.write_cache_entry(fingerprint, entry)
            except Exception as exc:  # the result is kept; only the cache will not find it
                _log.warning(
                    "the cache entry of task %s of run %s could not be written: %s",
                    name,
                    self.run_id,
                    describe(exc),
                )

    def _manifest_tasks(self, states: dict[int, str]) -> dict[str, ManifestTask]:
        """Each task of the run as its manifest says it, by its key (``states``: each node's
        last state, by ``id``)."""
        tasks = {}
        prints = self.prints
        kept, not_kept, proofs = self.kept, self.not_kept, self._proofs
        for node, task_key, fingerprint, code, why_not in zip(
            self.nodes,
            prints.keys,
            prints.fingerprints,
            prints.codes,
            prints.why_not,
            strict=True,
        ):
            lazy = node.lazy
            from_run = kept.get(id(node))
            size = sha256 = None
            if from_run is not None:
                size, digest = proofs[id(node)]
                sha256 = digest if isinstance(digest, str) else digest.hex()
            state = states.get(id(node), "CANCELLED")
            tasks[task_key] = ManifestTask(
                name=lazy.name,
                task_id=lazy.task_id,
                state=state,
                fingerprint=fingerprint,
                code=code,
                from_run=from_run,
                size=size,
                sha256=sha256,
                not_kept=not_kept.get(id(node)),
                why_not=why_not or None,
                refused=self.refused.get(id(node)),
                skipped=self.skipped.get(id(node)) if state == "SKIPPED" else None,
                written_by=self.written_by.get(id(node)) if from_run == self.run_id else None,
            )
        return tasks

    async def close(
        self,
        status: str,
        states: dict[int, str],
        *,
        name: str | None,
        workflow: str | None,
        params: dict[str, Any] | None,
        rerun_of: str | None,
        root_run: str | None,
        origin: RunOrigin | None = None,
    ) -> None:
        """Wait for the run's results to be written, then write its manifest (``states``: each
        node's last state, by ``id``; ``origin``: where the run came from) and wait for it."""
        store = self.store
        self._hand_over()
        await asyncio.wrap_future(store.flushed())
        by_node = {id(node): node for node in self.nodes}
        for key, (why, written) in list(self._failed.items()):
            if self.kept.pop(key, None) is not None:
                self.bytes_kept -= written
                self._not_kept(by_node[key], f"it could not be written: {why}")
        stats = self.stats  # counted here, not a task at a time: the hot path is keep()
        stats.results_kept += sum(1 for run in self.kept.values() if run == self.run_id)
        stats.results_bytes += self.bytes_kept
        tasks = self._manifest_tasks(states)
        manifest = RunManifest(
            run_id=self.run_id,
            status=status,
            tasks=tasks,
            name=name,
            workflow=workflow,
            params=params,
            rerun_of=rerun_of,
            root_run=root_run,
            started=self.started,
            ended=_now(),
            origin=origin,
            source=self.source,
        )
        failed: list[str] = []

        def write() -> None:
            try:
                store.write_manifest(manifest)
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
                return
            try:  # the manifest says it all now
                store.forget_journal(self.run_id)
            except Exception as exc:
                _log.warning("run %s's journal could not be removed: %s", self.run_id, exc)

        store.submit(write)
        await asyncio.wrap_future(store.flushed())
        if failed:
            _log.warning("the manifest of run %s could not be written: %s", self.run_id, failed[0])
