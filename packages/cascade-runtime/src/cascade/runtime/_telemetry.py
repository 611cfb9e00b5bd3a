"""Publishing a run's events as PROTOCOL.md envelopes, and its periodic heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable

import msgspec

from cascade.interfaces import (
    MAX_BLOCKED_TASKS,
    MAX_SNAPSHOT_TASKS,
    PROTOCOL_VERSION,
    SNAPSHOT_INTERVAL,
    BlockedTask,
    Connector,
    ConnectorError,
    Heartbeat,
    Hold,
    LifecycleEvent,
    RunSnapshot,
    RunStatus,
    SnapshotTask,
    TaskState,
    TaskStateEvent,
    events_topic,
    heartbeat_topic,
    snapshot_topic,
    truncate_error,
)
from cascade.interfaces.connector_kit import RateLimitedLogger, bounded, validate_id

from ._counters import RunCounters
from ._events import Event, RunStarted, TaskBlocked, TaskEvent
from ._stamp import Stamp

__all__ = ["TelemetrySubscriber"]

_log = logging.getLogger("cascade.runtime.telemetry")
_encode = msgspec.json.Encoder().encode
_BATCH = 128
# Messages the connector may hold unconfirmed before the sender lets it catch up (below its
# default buffer of 10,000, which drops the oldest when full), and how long one wait may last.
_HIGH_WATER = 2048
_CATCH_UP = 1.0
_STATES = {
    state: state.encode()
    for state in ("RUNNING", "COMPLETED", "FAILED", "SKIPPED", "BLOCKED", "RETRYING", "CANCELLED")
}
_BLOCKED = _STATES["BLOCKED"]
_CANCELLED = _STATES["CANCELLED"]
_SNAPSHOT_PART_BYTES = 192 * 1024  # the tasks of one snapshot message, below readers' 256 KiB
_SNAPSHOT_YIELD = 256  # tasks encoded between two turns of the loop
# A snapshot's task, formatted straight: the same bytes as SnapshotTask's encoding.
_ENTRY = (
    b'{"seq":%d,"ts":"%b.%06d+00:00","task_id":%b,"task_name":%b,"state":"%b",'
    b'"duration_ms":%b,"error":%b}'
)


def _first(item: tuple[int, TaskEvent]) -> int:
    return item[0]


class TelemetrySubscriber:
    """Publishes a run's events through a connector, never making the run wait.

    Subscribe it to an engine's ``events`` bus (the engine does this when it
    has a connector). Each event is queued as it happens (a deque
    append); one background task, started by :meth:`start`, encodes the
    queue into PROTOCOL.md envelopes and hands them to
    ``connector.publish`` on ``{prefix}/telemetry/{org}/{project}/{run_id}/events``
    (QoS 0 for task states, 1 for the run's lifecycle; ``sourced``: on
    ``.../events/{source}``, the layout a broker ACL binds to a login). While a connected
    broker takes messages more slowly than the run makes events (a burst),
    the sender lets the connector catch up before handing it more, so the
    events wait here, compactly, instead of overflowing the connector's
    buffer; a broker that takes nothing for a second is not waited for again
    until it takes something. At most ``max_queue`` events wait here and the
    oldest are dropped and counted in :attr:`dropped` (their ``seq`` skipped).
    Every ``heartbeat_interval`` seconds (``None``: never) it publishes a
    ``Heartbeat`` with the run's counters on ``.../heartbeat`` (QoS 0),
    ``dropped_telemetry`` being the connector's ``stats.dropped`` plus
    :attr:`dropped`, ``last_seq`` the number of the run's latest event, and,
    while tasks are blocked, up to ``MAX_BLOCKED_TASKS`` of them with what holds
    each now (``holds(task_name)``, the engine's :meth:`ConstraintManager.holds`;
    without it, what held each when it blocked), so that a reader attached at
    any moment learns why they wait. ``trace_id``, the run's OpenTelemetry trace id
    when it is traced, goes into every envelope.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        run_id: str,
        org_id: str,
        project_id: str,
        topic_prefix: str | None = None,
        sourced: bool = False,
        heartbeat_interval: float | None = 5.0,
        max_queue: int = 100_000,
        holds: Callable[[str], list[Hold]] | None = None,
        trace_id: str | None = None,
    ) -> None:
        prefix = topic_prefix if topic_prefix is not None else connector.topic_prefix
        self.connector = connector
        self.run_id = run_id
        for value, field in ((run_id, "run_id"), (org_id, "org_id"), (project_id, "project_id")):
            validate_id(value, field)
        source = connector.source_id if sourced else None
        self.events_topic = events_topic(org_id, project_id, run_id, prefix, source)
        self.heartbeat_topic = heartbeat_topic(org_id, project_id, run_id, prefix, source)
        self.heartbeat_interval = heartbeat_interval
        self.holds = holds
        self.counters = RunCounters()
        self.dropped = 0
        self._queue: deque[Event] = deque()
        self._sent = 0  # the seq of the latest event sent, or dropped from the queue
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._closing = False
        self._stalled_at: int | None = None  # stats.published when the broker last took nothing
        self._sender: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._log = RateLimitedLogger(_log)
        self._stamp = Stamp()
        self._old_stamp = Stamp()  # for the events a snapshot lists: the hot path's stays warm
        # The envelope up to its body, everything but ts (and seq) pre-encoded, in Envelope's order:
        # a traced run's trace_id is in every envelope at no cost per event.
        head = (
            b'{"v":%b,"ts":"%%b.%%06d+00:00","run_id":%b,"org_id":%b,"project_id":%b,'
            b'"source":%b,'
            % tuple(
                _encode(value).replace(b"%", b"%%")
                for value in (PROTOCOL_VERSION, run_id, org_id, project_id, connector.source_id)
            )
        )
        if trace_id is not None:
            head += b'"trace_id":%b,' % _encode(trace_id).replace(b"%", b"%%")
        self._format = head + b'"body":%b}'
        self._event_format = head + b'"seq":%d,"body":%b}'
        # A task state body formatted straight into the envelope: same bytes as TaskStateEvent's.
        self._task_format = (
            head + b'"seq":%d,"body":{"type":"TaskStateEvent","task_id":%b,"task_name":%b,'
            b'"state":"%b","duration_ms":%b,"error":%b}}'
        )
        self.seq = 0
        """The ``seq`` of the run's latest event (each event's envelope carries its own)."""
        self._names: dict[str, bytes] = {}
        self.snapshot_topic = snapshot_topic(org_id, project_id, run_id, prefix, source)
        self.snapshots = 0
        """Snapshots of the run published (each in one or more messages)."""
        self._snapshot_after: int | None = None  # the lowest ``after`` asked since the last answer
        self._snapshot_task: asyncio.Task[None] | None = None
        self._answered_at = -math.inf  # time.monotonic() of the last answer

    def __call__(self, event: Event) -> None:
        """The bus handler: number the event, count it and queue it for publishing (this
        run's only)."""
        if event.run_id != self.run_id:
            return  # another run of the same engine: it has its own subscriber
        self.seq = seq = self.seq + 1
        self.counters.update(event, seq)
        queue = self._queue
        if len(queue) >= self._max_queue:
            queue.popleft()
            self._sent += 1  # its number is skipped: readers count it as missed
            self.dropped += 1
            self._log.warning("queue-full", "telemetry queue full: oldest event dropped")
        queue.append(event)
        if not self._wake.is_set():
            self._wake.set()

    def start(self) -> None:
        """Start the background sender (and the heartbeat, if it has an interval)."""
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name="cascade-telemetry")
        if self.heartbeat_interval is not None and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(
                self._heartbeat_loop(self.heartbeat_interval), name="cascade-heartbeat"
            )

    async def aclose(self, timeout: float = 2.0) -> None:
        """Send what is queued, then stop; give up once the broker took nothing for ``timeout`` s.

        A broker that keeps taking messages gets every one (the wait is bounded by
        what can be queued: ``max_queue`` events); one that is hung or away costs at
        most ``timeout`` seconds, and what is left is dropped and counted. With a
        heartbeat interval, a last heartbeat with the final counters goes first.
        """
        self._closing = True
        self._wake.set()
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            with contextlib.suppress(asyncio.TimeoutError):
                async with bounded(timeout):
                    await self.publish_heartbeat()
        if self._sender is not None:
            sender = self._sender
            stats = self.connector.stats
            published = -1
            done: set[asyncio.Task[None]] = set()
            while not done and stats.published != published:  # while the broker takes some
                published = stats.published
                done, _ = await asyncio.wait({sender}, timeout=timeout)
            if not done:
                sender.cancel()
                self.dropped += len(self._queue)
                self._queue.clear()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def heartbeat(self) -> Heartbeat:
        """The run's counters now, as a heartbeat body."""
        c = self.counters
        return Heartbeat(
            running=max(0, c.running),
            completed=c.completed,
            failed=c.failed,
            skipped=c.skipped,
            blocked=c.blocked,
            pending=c.pending,
            dropped_telemetry=self.connector.stats.dropped + self.dropped,
            cancelled=c.cancelled if c.cancelled else msgspec.UNSET,
            last_seq=self.seq,
            blocked_tasks=self._blocked_tasks() if c.blocked else msgspec.UNSET,
        )

    def _blocked_tasks(self) -> list[BlockedTask]:
        """The first ``MAX_BLOCKED_TASKS`` tasks blocked, each with what holds it now."""
        holds = self.holds
        now: dict[str, list[Hold]] = {}  # holds depend on the task's name only
        listed = []
        for event in itertools.islice(self.counters.blocked_events, MAX_BLOCKED_TASKS):
            name = event.task_name
            if holds is not None:
                held = now.get(name)
                if held is None:
                    held = now[name] = holds(name)
            else:
                held = list(getattr(event, "held_by", ()))
            listed.append(
                BlockedTask(task_id=event.task_id, task_name=name, since=event.ts, held_by=held)
            )
        return listed

    def envelope(self, body: msgspec.Struct, ts: float, seq: int | None = None) -> bytes:
        """The encoded envelope of ``body`` at ``ts`` (epoch seconds), with ``seq`` if given."""
        second, micro = self._stamp(ts)
        if seq is None:
            return self._format % (second, micro, _encode(body))
        return self._event_format % (second, micro, seq, _encode(body))

    def task_envelope(self, event: TaskEvent, seq: int) -> bytes:
        """The encoded envelope of a task event, the run's event number ``seq``.

        :meth:`envelope` of its TaskStateEvent, faster: this is the telemetry hot
        path (two or more events per task), hence the inlining.
        """
        name = self._names.get(event.task_name)
        if name is None:
            name = self._names[event.task_name] = _encode(event.task_name)
        ts = event.ts
        second = int(ts)
        stamp = self._stamp
        prefix = stamp.prefix if second == stamp.whole_second else stamp(ts)[0]
        state = _STATES[event.state]
        if (state is _BLOCKED and isinstance(event, TaskBlocked) and event.held_by) or (
            state is _CANCELLED
        ):
            return self._event_format % (
                prefix,
                int((ts - second) * 1_000_000),
                seq,
                _encode(self._task_body(event)),
            )
        error = event.error
        return self._task_format % (
            prefix,
            int((ts - second) * 1_000_000),
            seq,
            _encode(event.task_id),
            name,
            state,
            _encode(event.duration_ms),
            _encode(truncate_error(error)) if error else b'""',
        )

    async def publish_heartbeat(self) -> None:
        """Publish one heartbeat now."""
        await self._publish(self.heartbeat_topic, self.envelope(self.heartbeat(), time.time()), 0)

    def request_snapshot(self, after: int = 0) -> None:
        """A reader asked for the run's state after its event ``after``.

        Answered on :attr:`snapshot_topic` at once, or :data:`SNAPSHOT_INTERVAL` seconds
        after the last answer: the requests made meanwhile share one answer (from the
        lowest ``after`` of them), so a thousand readers asking at once cost the run one
        snapshot a second at most.
        """
        if self._closing:
            return
        if self._snapshot_after is None or after < self._snapshot_after:
            self._snapshot_after = after
        if self._snapshot_task is None:
            self._snapshot_task = asyncio.get_running_loop().create_task(
                self._answer_snapshots(), name="cascade-snapshot"
            )

    async def _answer_snapshots(self) -> None:
        try:
            while self._snapshot_after is not None:
                wait = self._answered_at + SNAPSHOT_INTERVAL - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # the rate limit, not a synchronisation
                after, self._snapshot_after = self._snapshot_after, None
                self._answered_at = time.monotonic()
                await self.publish_snapshot(after)
        finally:
            self._snapshot_task = None

    async def publish_snapshot(self, after: int = 0) -> None:
        """Publish the run's state now (:class:`~cascade.interfaces.RunSnapshot`): the latest
        event of every task whose latest event came after event ``after``, at most
        :data:`~cascade.interfaces.MAX_SNAPSHOT_TASKS` of them (the earliest), in no order, in
        messages of at most about 192 KiB, the loop free to run tasks between every few
        hundred."""
        c = self.counters
        last_seq = self.seq
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
        )
        numbers = c.numbers
        entries = [
            (seq, event) for task_id, event in c.latest.items() if (seq := numbers[task_id]) > after
        ]
        if len(entries) > MAX_SNAPSHOT_TASKS:  # the earliest, so that it is whole up to through
            entries = heapq.nsmallest(MAX_SNAPSHOT_TASKS, entries, key=_first)
            head.through = entries[-1][0]
        parts: list[list[bytes]] = [[]]
        size = 0
        for index, (seq, event) in enumerate(entries, 1):
            encoded = self._snapshot_entry(seq, event)
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
            body = _encode(head)  # ends with its (empty) list of tasks: "tasks":[]}
            second, micro = self._stamp(time.time())
            payload = self._format % (second, micro, body[:-2] + b",".join(tasks) + b"]}")
            await self._publish(self.snapshot_topic, payload, 1)
            await asyncio.sleep(0)
        self.snapshots += 1

    def _snapshot_entry(self, seq: int, event: TaskEvent) -> bytes:
        """One task of a snapshot, encoded: :class:`SnapshotTask` of its latest event, formatted
        straight, as :meth:`task_envelope` does, but for those with more fields."""
        state = _STATES[event.state]
        second, micro = self._old_stamp(event.ts)
        if state is _CANCELLED or (state is _BLOCKED and getattr(event, "held_by", None)):
            return _encode(
                self._snapshot_struct(seq, event, f"{second.decode()}.{micro:06d}+00:00")
            )
        name = self._names.get(event.task_name)
        if name is None:
            name = self._names[event.task_name] = _encode(event.task_name)
        error = event.error
        return _ENTRY % (
            seq,
            second,
            micro,
            _encode(event.task_id),
            name,
            state,
            _encode(event.duration_ms),
            _encode(truncate_error(error)) if error else b'""',
        )

    def _snapshot_struct(self, seq: int, event: TaskEvent, ts: str) -> SnapshotTask:
        body = self._task_body(event)
        return SnapshotTask(
            seq=seq,
            ts=ts,
            task_id=body.task_id,
            task_name=body.task_name,
            state=body.state,
            duration_ms=body.duration_ms,
            error=body.error,
            held_by=body.held_by,
            cancelled=body.cancelled,
        )

    async def _heartbeat_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.publish_heartbeat()

    async def _send_loop(self) -> None:
        queue = self._queue
        publish = self.connector.publish
        topic = self.events_topic
        # a connector's bound publisher (MqttConnector.publisher), where it has one: no coroutine
        # per task event; any other connector's publish() is awaited
        make_publisher = getattr(self.connector, "publisher", None)
        send = make_publisher(topic, 0) if callable(make_publisher) else None
        while True:
            sent = 0
            while queue:
                event = queue.popleft()
                self._sent = seq = self._sent + 1
                try:  # inlined _publish: this loop runs for every event
                    if isinstance(event, TaskEvent):
                        if send is not None:
                            send(self.task_envelope(event, seq))
                        else:
                            await publish(topic, self.task_envelope(event, seq), 0)
                    else:
                        qos, body = self._body(event)
                        await publish(topic, self.envelope(body, event.ts, seq), qos)
                except Exception as exc:
                    self._publish_failed(exc)
                sent += 1
                if sent == _BATCH:
                    sent = 0
                    await asyncio.sleep(0)  # a burst of events must not hold up the workflow
                    if self.connector.stats.buffered >= _HIGH_WATER:
                        await self._catch_up()
            if self._closing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _catch_up(self) -> None:
        """Let a connected broker that is slower than the run take what the connector holds.

        Only the sender waits (the run's events queue up here meanwhile). A broker
        that took nothing in :data:`_CATCH_UP` seconds is hung or away: the sender
        stops waiting for it, and the connector's buffer takes over (dropping the
        oldest when full), until the broker takes something again.
        """
        connector = self.connector
        stats = connector.stats
        if self._stalled_at is not None:
            if stats.published == self._stalled_at:
                return
            self._stalled_at = None
        if not connector.is_connected:
            return
        published = stats.published
        try:
            await connector.flush(_CATCH_UP)
        except ConnectorError:
            if connector.stats.published == published:
                self._stalled_at = published

    @staticmethod
    def _task_body(event: TaskEvent) -> TaskStateEvent:
        held = event.held_by if isinstance(event, TaskBlocked) and event.held_by else None
        cancelled = event.state == "CANCELLED"  # FAILED on the wire, which every reader knows
        state: TaskState = "FAILED" if event.state == "CANCELLED" else event.state
        return TaskStateEvent(
            task_id=event.task_id,
            task_name=event.task_name,
            state=state,
            duration_ms=event.duration_ms,
            error=truncate_error(event.error),
            held_by=list(held) if held else msgspec.UNSET,
            cancelled=True if cancelled else msgspec.UNSET,
        )

    @classmethod
    def _body(cls, event: Event) -> tuple[int, msgspec.Struct]:
        if isinstance(event, TaskEvent):
            return 0, cls._task_body(event)
        if isinstance(event, RunStarted):
            return 1, LifecycleEvent(event="ENGINE_STARTED", tasks=event.task_count)
        # PROTOCOL.md knows Succeeded and Failed only: a cancelled run is Failed, cancelled
        status: RunStatus = "Succeeded" if event.status == "Succeeded" else "Failed"
        return 1, LifecycleEvent(
            event="ENGINE_STOPPED",
            status=status,
            error=truncate_error(event.error),
            cancelled=True if event.status == "Cancelled" else None,
        )

    async def _publish(self, topic: str, payload: bytes, qos: int) -> None:
        try:
            await self.connector.publish(topic, payload, qos=qos)
        except Exception as exc:
            self._publish_failed(exc)

    def _publish_failed(self, exc: Exception) -> None:
        """A broken connector costs the telemetry, never the run."""
        self.dropped += 1
        reason = str(exc) or "(without a message)"
        self._log.warning("publish", "telemetry publish failed: %s: %s", type(exc).__name__, reason)
