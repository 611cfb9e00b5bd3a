"""One run's results: each completed task's kept (off the loop), those a rerun reuses read,
and the run's manifest written at its end."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from ._fingerprints import Prints
from ._graph import Graph, Node
from ._rerun import Step
from ._results import SAME, ManifestTask, ResultMissing, ResultStore, RunManifest, encode_msgpack
from ._stats import EngineStats

__all__ = ["RunResults"]

_log = logging.getLogger("cascade.runtime.engine")
_HAND_OVER = 0.05
_BATCH_BYTES = 1 << 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class RunResults:
    """Keeps the results of one run's tasks in ``store`` by their fingerprints (``prints``, in
    graph order with ``keys``), and gives the tasks a rerun reuses their stored values."""

    def __init__(
        self,
        store: ResultStore,
        run_id: str,
        graph: Graph,
        prints: Prints,
        stats: EngineStats,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.graph = graph
        self.keys = prints.keys
        self.prints = prints
        self.stats = stats
        self.started = _now()
        self._index = {id(node): index for index, node in enumerate(graph.nodes)}
        self.reused: dict[int, tuple[Any, str]] = {}  # node -> (its stored value, from run)
        self.kept: dict[int, str] = {}  # node -> the run its result is kept from
        self.not_kept: dict[int, str] = {}  # node -> why not
        # node -> the decision its value comes from ("load completed by ops-1"): a node completed
        # by a decision, and every node computed from one, is never kept as if computed
        self.decided: dict[int, str] = {}
        self.bytes_kept = 0
        self._max_bytes = store.max_bytes
        self._failed: dict[int, tuple[str, int]] = {}  # node -> why its write failed, its size
        # results to write, handed to the writer thread in batches (every _HAND_OVER seconds,
        # or at _BATCH_BYTES): a thread woken for each would take the GIL from the loop as often
        # three lists, not a tuple a result: nothing more for the garbage collector to track
        self._batch: list[int] = []  # the nodes
        self._batch_fingerprints: list[str] = []
        self._batch_data: list[bytes] = []
        self._batch_bytes = 0
        self._loop = asyncio.get_running_loop()

    async def load(self, steps: list[Step]) -> list[Step]:
        """Read the stored value of every ``reuse`` step (in a thread); a step whose result is
        missing or unreadable becomes ``force`` and the engine says why. Returns the steps."""
        wanted = [step for step in steps if step.action == "reuse"]
        if not wanted:
            return steps
        store = self.store

        def read() -> list[tuple[Step, Any, str | None]]:
            found: list[tuple[Step, Any, str | None]] = []
            for step in wanted:
                assert step.fingerprint is not None
                try:
                    found.append((step, store.read(step.fingerprint), None))
                except ResultMissing as exc:
                    found.append((step, None, str(exc)))
            return found

        for step, value, missing in await asyncio.to_thread(read):
            node = step.node
            if missing is not None:
                step.action, step.why, step.from_run = "force", missing, None
                _log.warning(
                    "task %s (%s) of run %s runs again: %s",
                    node.lazy.name,
                    node.lazy.task_id,
                    self.run_id,
                    missing,
                )
            else:
                assert step.from_run is not None
                self.reused[id(node)] = (value, step.from_run)
                self.kept[id(node)] = step.from_run
        return steps

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
                if not batch:
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
        for dep in node.deps:
            found = decided.get(id(dep))
            if found is not None:
                return found
        return None

    def states(self, failed: set[int]) -> dict[int, str]:
        """Each node's last state, by ``id``, for the manifest (``failed``: the nodes that
        failed)."""
        states = {}
        for node in self.graph.nodes:
            key = id(node)
            if key in self.kept or key in self.not_kept:
                states[key] = "COMPLETED"
            elif node.skipped:
                states[key] = "SKIPPED"
            elif key in failed:
                states[key] = "FAILED"
            else:
                states[key] = "CANCELLED"
        return states

    def _not_kept(self, node: Node, reason: str) -> None:
        self.not_kept[id(node)] = reason
        self.stats.results_not_kept += 1
        lazy = node.lazy
        _log.warning(
            "the result of task %s (%s) of run %s is not kept: %s",
            lazy.name,
            lazy.task_id,
            self.run_id,
            reason,
        )

    def _hand_over(self) -> None:
        batch = self._batch, self._batch_fingerprints, self._batch_data
        self._batch, self._batch_fingerprints, self._batch_data = [], [], []
        self._batch_bytes = 0
        if batch[0]:
            self.store.submit(lambda: self._write(*batch))

    def _write(self, nodes: list[int], fingerprints: list[str], encoded: list[bytes]) -> None:
        """In the writer thread."""
        store = self.store
        for key, fingerprint, data in zip(nodes, fingerprints, encoded, strict=True):
            try:
                store.write(store.result_path(fingerprint), data)
            except Exception as exc:
                self._failed[key] = (f"{type(exc).__name__}: {exc}", len(data))

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
    ) -> None:
        """Wait for the run's results to be written, then write its manifest (``states``: each
        node's last state, by ``id``) and wait for it."""
        store = self.store
        self._hand_over()
        await asyncio.wrap_future(store.flushed())
        by_node = {id(node): node for node in self.graph.nodes}
        for key, (why, size) in list(self._failed.items()):
            if self.kept.pop(key, None) is not None:
                self.bytes_kept -= size
                self._not_kept(by_node[key], f"it could not be written: {why}")
        stats = self.stats  # counted here, not a task at a time: the hot path is keep()
        stats.results_kept += sum(1 for run in self.kept.values() if run == self.run_id)
        stats.results_bytes += self.bytes_kept
        tasks = {}
        prints = self.prints
        kept, not_kept = self.kept, self.not_kept
        for node, task_key, fingerprint, code, why_not in zip(
            self.graph.nodes,
            prints.keys,
            prints.fingerprints,
            prints.codes,
            prints.why_not,
            strict=True,
        ):
            lazy = node.lazy
            tasks[task_key] = ManifestTask(
                name=lazy.name,
                task_id=lazy.task_id,
                state=states.get(id(node), "CANCELLED"),
                fingerprint=fingerprint,
                code=code,
                from_run=kept.get(id(node)),
                not_kept=not_kept.get(id(node)),
                why_not=why_not or None,
            )
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
        )
        failed: list[str] = []

        def write() -> None:
            try:
                store.write_manifest(manifest)
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")

        store.submit(write)
        await asyncio.wrap_future(store.flushed())
        if failed:
            _log.warning("the manifest of run %s could not be written: %s", self.run_id, failed[0])
