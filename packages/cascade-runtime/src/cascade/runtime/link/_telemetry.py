"""Publishing a run's events as docs/protocol.md envelopes, and its periodic heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import repeat, starmap
from typing import cast

import msgspec

from cascade.connector_kit import RateLimitedLogger, bounded
from cascade.interfaces import (
    Connector,
    ConnectorError,
    Heartbeat,
    Hold,
    events_topic,
    heartbeat_topic,
    snapshot_topic,
    validate_id,
)
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import MAX_BLOCKED_TASKS, BlockedTask

from .._events import RunFinished, TaskEvent, TaskHeld, TaskQueued, WireEvent
from ._counters import RunCounters
from ._envelopes import RunEnvelopes, event_body
from ._run_snapshots import RunSnapshots

__all__ = ["TelemetrySubscriber"]

_log = logging.getLogger("cascade.runtime.telemetry")
_BATCH = 128
# Messages the connector may hold unconfirmed before the sender lets it catch up (below its
# default buffer of 10,000, which drops the oldest when full), and how long one wait may last.
_HIGH_WATER = 2048
_CATCH_UP = 1.0
# Seconds the sender lets events gather once one comes, where the connector takes batches: a
# thread pool's run hands over a few events a loop turn, and writing each turn's apart cost
# it more than the events did (nox -s bench).
_LINGER = 0.01


class TelemetrySubscriber:
    """Publishes a run's events through a connector, never making the run wait.

    Subscribe its :meth:`on_event` to an engine's ``events`` bus (the engine does this when
    it has a connector). Each event is queued as it happens (a deque append); one background
    task, started by :meth:`start`, wakes when one comes (with a connector that takes
    batches, as MqttConnector does, lets more gather for ``linger`` seconds, so that it
    takes, encodes and writes them in batches whatever the loop turns hand over; a run's end
    does not wait for it), encodes the queue into docs/protocol.md envelopes and hands them to
    ``connector.publish`` on ``{prefix}/telemetry/{org}/{project}/{run_id}/events`` (QoS 0
    for task states, 1 for the run's lifecycle; on ``.../events/{source}``, the
    layout a broker ACL binds to a login, where the connector says so:
    :attr:`~cascade.interfaces.Connector.sourced_topics`). The run's end goes once the
    connector has had what it holds before it confirmed (as a catch-up below), so that
    brokers that keep one publisher's order only within a QoS level (RabbitMQ, NATS)
    deliver it after the run's last states (in most runs: docs/brokers.md). While a connected
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
    while tasks are blocked, ``held`` (how many of them are held for a decision), and up
    to ``MAX_BLOCKED_TASKS`` of them (the held first) with what holds
    each now (``holds(task_name, task_id)``: the run's, the constraints on its name and the
    system resources it waits for; without it, what held each when it blocked), so that a
    reader attached at any moment learns why they wait. ``trace_id``, the run's OpenTelemetry
    trace id when it is traced, goes into every envelope. ``name`` and ``origin``, the run's
    name and where it came from, go into its snapshots (as on its ``ENGINE_STARTED``) and its
    summary; ``graph``, its tasks and their dependencies, into its snapshots' first parts, or
    ``graph_nodes``, its task count, where its graph is above the bound (``None``).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        run_id: str,
        org_id: str,
        project_id: str,
        topic_prefix: str | None = None,
        heartbeat_interval: float | None = 5.0,
        max_queue: int = 100_000,
        holds: Callable[[str, str], list[Hold]] | None = None,
        trace_id: str | None = None,
        name: str | None = None,
        origin: RunOrigin | None = None,
        graph: RunGraph | None = None,
        graph_nodes: int | None = None,
        linger: float = _LINGER,
    ) -> None:
        prefix = topic_prefix if topic_prefix is not None else connector.topic_prefix
        self.connector = connector
        self.run_id = run_id
        self.name = name
        self.origin = origin
        for value, field in ((run_id, "run_id"), (org_id, "org_id"), (project_id, "project_id")):
            validate_id(value, field)
        source = connector.source_id if connector.sourced_topics else None  # the layout
        self.events_topic = events_topic(org_id, project_id, run_id, prefix, source)
        self.heartbeat_topic = heartbeat_topic(org_id, project_id, run_id, prefix, source)
        self.heartbeat_interval = heartbeat_interval
        self.linger = linger
        self.holds = holds
        self.counters = RunCounters()
        self.dropped = 0
        self._queue: deque[WireEvent] = deque()
        self._sent = 0  # the seq of the latest event sent, or dropped from the queue
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._idle = True  # the sender waits on _wake (or has not started)
        self._closing = False
        self._stalled_at: int | None = None  # stats.published when the broker last took nothing
        self._sender: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._log = RateLimitedLogger(_log)
        self._envelopes = RunEnvelopes(run_id, org_id, project_id, connector.source_id, trace_id)
        self.seq = 0
        """The ``seq`` of the run's latest event (each event's envelope carries its own)."""
        self.snapshot_topic = snapshot_topic(org_id, project_id, run_id, prefix, source)
        self._snapshots = RunSnapshots(
            self.counters,
            self._envelopes,
            self._last_seq,
            self._publish,
            self.snapshot_topic,
            name=name,
            origin=origin,
            graph=graph,
            graph_nodes=graph_nodes,
        )

    def _last_seq(self) -> int:
        return self.seq

    def on_event(self, event: WireEvent) -> None:
        """The bus handler: number the event, count it and queue it for publishing (this
        run's only)."""
        if event.run_id != self.run_id:
            return  # another run of the same engine: it has its own subscriber
        self.seq = seq = self.seq + 1
        self.counters.update(event, seq)
        queue = self._queue
        queue.append(event)
        if len(queue) > self._max_queue:
            queue.popleft()
            self._sent += 1  # its number is skipped: readers count it as missed
            self.dropped += 1
            self._log.warning("queue-full", "telemetry queue full: oldest event dropped")
        if self._idle:  # the sender waits: wake it (once a turn, not per event)
            self._idle = False
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
        await self._snapshots.aclose()
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
            held=(c.held or msgspec.UNSET) if c.blocked else msgspec.UNSET,
        )

    def _blocked_tasks(self) -> list[BlockedTask]:
        """The first ``MAX_BLOCKED_TASKS`` tasks blocked, those held for a decision first, each
        with what holds it now (a held task: its decision hold)."""
        holds = self.holds
        listed = []
        for event in itertools.islice(self.counters.blocked_events, MAX_BLOCKED_TASKS):
            name = event.task_name
            held: list[Hold] | None
            if isinstance(event, TaskHeld | TaskQueued):  # held until decided, or started
                held = list(event.held_by)
            elif holds is not None:
                held = holds(name, event.task_id)
            else:
                held = list(getattr(event, "held_by", ()))
            listed.append(
                BlockedTask(task_id=event.task_id, task_name=name, since=event.ts, held_by=held)
            )
        return listed

    def envelope(self, body: msgspec.Struct, ts: float, seq: int | None = None) -> bytes:
        """The encoded envelope of ``body`` at ``ts`` (epoch seconds), with ``seq`` if given."""
        return self._envelopes.envelope(body, ts, seq)

    def task_envelope(self, event: TaskEvent, seq: int) -> bytes:
        """The encoded envelope of a task event, the run's event number ``seq``: :meth:`envelope`
        of its TaskStateEvent, faster (the telemetry's hot path)."""
        return self._envelopes.task_envelope(event, seq)

    async def publish_heartbeat(self) -> None:
        """Publish one heartbeat now."""
        await self._publish(self.heartbeat_topic, self.envelope(self.heartbeat(), time.time()), 0)

    def request_snapshot(self, after: int = 0) -> None:
        """A reader asked for the run's state after its event ``after``.

        Answered on :attr:`snapshot_topic` at once, or
        :data:`~cascade.runtime.link._run_snapshots.SNAPSHOT_INTERVAL` seconds after the last
        answer: the requests made meanwhile share one answer (from the lowest ``after`` of them),
        so a thousand readers asking at once cost the run one snapshot a second at most.
        """
        if not self._closing:
            self._snapshots.request(after)

    async def publish_snapshot(self, after: int = 0) -> None:
        """Publish the run's state now (:class:`~cascade.interfaces.RunSnapshot`): the latest
        event of every task whose latest event came after event ``after``, at most
        :data:`~cascade.interfaces.wire.MAX_SNAPSHOT_TASKS` of them (the earliest), in no
        order, in messages of at most about 192 KiB, the loop free to run tasks between every few
        hundred."""
        await self._snapshots.publish(after)

    @property
    def snapshots(self) -> int:
        """Snapshots of the run published (each in one or more messages)."""
        return self._snapshots.published

    async def _heartbeat_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.publish_heartbeat()

    async def _send_loop(self) -> None:
        queue = self._queue
        publish = self.connector.publish
        topic = self.events_topic
        # A connector that takes a batch of payloads for one topic in one call
        # (MqttConnector.batch_publisher) gets each turn's task events so; one with a bound
        # publisher (publisher) gets them one call each; any other's publish() is awaited.
        make_batch = getattr(self.connector, "batch_publisher", None)
        send_many = make_batch(topic, 0) if callable(make_batch) else None
        make_publisher = getattr(self.connector, "publisher", None)
        send = make_publisher(topic, 0) if callable(make_publisher) else None
        task_envelope = self._envelopes.task_envelope
        linger = self.linger if send_many is not None else 0.0
        while True:
            while queue:
                # up to _BATCH events at once, taken and encoded without a Python step per
                # event: the leading task events (what follows them goes back in front)
                events = list(starmap(queue.popleft, repeat((), min(len(queue), _BATCH))))
                tasks = list(map(isinstance, events, repeat(TaskEvent)))
                run = len(events) if all(tasks) else tasks.index(False)
                if run < len(events):
                    queue.extendleft(reversed(events[run:]))
                    del events[run:]
                seq = self._sent
                self._sent = seq + run
                if events:
                    try:
                        numbered = range(seq + 1, seq + run + 1)
                        batch = list(map(task_envelope, cast("list[TaskEvent]", events), numbered))
                    except Exception as exc:
                        self._publish_failed(exc, run)
                    else:
                        await self._send_batch(batch, send_many, send, publish, topic)
                if queue and not isinstance(queue[0], TaskEvent):
                    event = queue.popleft()
                    if isinstance(event, RunFinished) and self.connector.stats.buffered:
                        # the run's end (QoS 1) after its states (QoS 0) have been confirmed:
                        # RabbitMQ and NATS would otherwise deliver it ahead of them
                        await self._catch_up()
                    self._sent = seq = self._sent + 1
                    try:
                        qos, body = event_body(event)
                        await publish(topic, self.envelope(body, event.ts, seq), qos)
                    except Exception as exc:
                        self._publish_failed(exc)
                if run == _BATCH:
                    await asyncio.sleep(0)  # a burst of events must not hold up the workflow
                    if self.connector.stats.buffered >= _HIGH_WATER:
                        await self._catch_up()
            if self._closing:
                return
            self._wake.clear()
            self._idle = True
            await self._wake.wait()
            if linger and not self._closing:
                await self._gather(linger)

    async def _gather(self, linger: float) -> None:
        """Let events gather for ``linger`` seconds, or until :meth:`aclose` wakes the sender
        (events coming meanwhile do not: the sender is not idle)."""
        self._wake.clear()
        timer = asyncio.get_running_loop().call_later(linger, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def _send_batch(
        self,
        batch: list[bytes],
        send_many: Callable[[list[bytes]], None] | None,
        send: Callable[[bytes], None] | None,
        publish: Callable[[str, bytes, int], Awaitable[None]],
        topic: str,
    ) -> None:
        """Hand a turn's encoded task events to the connector, in order, in as few calls as it
        takes; what it refuses is dropped and counted."""
        if send_many is not None:
            try:
                send_many(batch)
            except Exception as exc:
                self._publish_failed(exc, len(batch))
            return
        for payload in batch:
            try:
                if send is not None:
                    send(payload)
                else:
                    await publish(topic, payload, 0)
            except Exception as exc:
                self._publish_failed(exc)

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

    async def _publish(self, topic: str, payload: bytes, qos: int) -> None:
        try:
            await self.connector.publish(topic, payload, qos=qos)
        except Exception as exc:
            self._publish_failed(exc)

    def _publish_failed(self, exc: Exception, count: int = 1) -> None:
        """A broken connector costs the telemetry, never the run: ``count`` messages lost."""
        self.dropped += count
        reason = str(exc) or "(without a message)"
        self._log.warning("publish", "telemetry publish failed: %s: %s", type(exc).__name__, reason)
