"""A run's answers to readers that ask for its state: snapshots, rate-limited and in parts."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections.abc import Awaitable, Callable

import msgspec

from cascade.interfaces import RunSnapshot
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import MAX_SNAPSHOT_TASKS, snapshot_with_tasks

from .._events import TaskEvent
from ._counters import RunCounters
from ._envelopes import RunEnvelopes

__all__ = ["RunSnapshots"]

_encode = msgspec.json.Encoder().encode

SNAPSHOT_INTERVAL = 1.0
"""Seconds between two answers of an engine for one run, whoever asks (docs/protocol.md: at
most once a second)."""
_SNAPSHOT_PART_BYTES = 192 * 1024  # the tasks of one snapshot message, below readers' 256 KiB
_SNAPSHOT_YIELD = 256  # tasks encoded between two turns of the loop


def _first(item: tuple[int, TaskEvent]) -> int:
    return item[0]


class RunSnapshots:
    """Answers a run's snapshot requests on ``topic`` through ``publish``, from ``counters``
    and the number of the run's latest event (``last_seq()``); each answer has the run's
    ``name`` and ``origin``, and its first part the run's ``graph``, or ``graph_nodes``, its task
    count, for a run whose graph is above the bound."""

    def __init__(
        self,
        counters: RunCounters,
        envelopes: RunEnvelopes,
        last_seq: Callable[[], int],
        publish: Callable[[str, bytes, int], Awaitable[None]],
        topic: str,
        *,
        name: str | None = None,
        origin: RunOrigin | None = None,
        graph: RunGraph | None = None,
        graph_nodes: int | None = None,
    ) -> None:
        self.counters = counters
        self.name = name
        self.origin = origin
        self.graph = graph
        self.graph_nodes = graph_nodes
        # the graph's bytes count in its part's size: told once, when first answered
        self._graph_bytes = -1
        self.topic = topic
        self.published = 0
        """Snapshots of the run published (each in one or more messages)."""
        self._envelopes = envelopes
        self._last_seq = last_seq
        self._publish = publish
        self._after: int | None = None  # the lowest ``after`` asked since the last answer
        self._task: asyncio.Task[None] | None = None
        self._answered_at = -math.inf  # time.monotonic() of the last answer

    def request(self, after: int) -> None:
        """See :meth:`TelemetrySubscriber.request_snapshot`."""
        if self._after is None or after < self._after:
            self._after = after
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._answer(), name="cascade-snapshot"
            )

    async def aclose(self) -> None:
        """Stop answering (an answer under way is cut short)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _answer(self) -> None:
        try:
            while self._after is not None:
                wait = self._answered_at + SNAPSHOT_INTERVAL - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # the rate limit, not a synchronisation
                after, self._after = self._after, None
                self._answered_at = time.monotonic()
                await self.publish(after)
        finally:
            self._task = None

    async def publish(self, after: int = 0) -> None:
        """See :meth:`TelemetrySubscriber.publish_snapshot`."""
        c = self.counters
        last_seq = self._last_seq()
        head = RunSnapshot(
            after=after,
            through=last_seq,
            last_seq=last_seq,
            planned=c.total,
            running=max(0, c.running),
            completed=c.completed,
            failed=c.failed,
            cancelled=c.cancelled,
            skipped=c.skipped,
            blocked=c.blocked,
            pending=c.pending,
            held=(c.held or msgspec.UNSET) if c.blocked else msgspec.UNSET,
            name=msgspec.UNSET if self.name is None else self.name,
            origin=msgspec.UNSET if self.origin is None else self.origin,
        )
        numbers = c.numbers
        entries = [
            (seq, event) for task_id, event in c.latest.items() if (seq := numbers[task_id]) > after
        ]
        if len(entries) > MAX_SNAPSHOT_TASKS:  # the earliest, so that it is whole up to through
            entries = heapq.nsmallest(MAX_SNAPSHOT_TASKS, entries, key=_first)
            head.through = entries[-1][0]
        envelopes = self._envelopes
        if self.graph is None:
            graph_size = 0
        elif self._graph_bytes < 0:
            graph_size = self._graph_bytes = len(_encode(self.graph))
        else:
            graph_size = self._graph_bytes
        parts: list[list[bytes]] = [[]]
        size = graph_size  # the first part carries the graph: its tasks fit in what is left
        mapped = c.mapped
        for index, (seq, event) in enumerate(entries, 1):
            items = mapped.get(event.task_id) if mapped else None
            encoded = envelopes.snapshot_entry(seq, event, items)
            if parts[-1] and size + len(encoded) > _SNAPSHOT_PART_BYTES:
                parts.append([])
                size = 0
            parts[-1].append(encoded)
            size += len(encoded) + 1
            if index % _SNAPSHOT_YIELD == 0:
                await asyncio.sleep(0)  # a big run's snapshot must not hold up its tasks
        head.parts = len(parts)
        for number, tasks in enumerate(parts, 1):
            head.part = number
            if number == 1:
                if self.graph is not None:
                    head.graph = self.graph
                elif self.graph_nodes is not None:
                    head.graph_nodes = self.graph_nodes
            else:
                head.graph, head.graph_nodes = msgspec.UNSET, msgspec.UNSET
            body = snapshot_with_tasks(_encode(head), tasks)
            second, micro = envelopes.stamp(time.time())
            await self._publish(self.topic, envelopes.format % (second, micro, body), 1)
            await asyncio.sleep(0)
        self.published += 1
