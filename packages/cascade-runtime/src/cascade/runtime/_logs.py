"""Forwarding what a run's tasks log: captured where they log it, sent in batches, never in
the way of the tasks.

While a run forwards its logs, one :class:`logging.Handler` on the root logger takes every
record that the application's logging lets through and that a task logged (the task's
attempt is in a context variable, which asyncio copies into everything the task starts and
the engine into the thread of a plain-function task). A record is counted against its
task's budgets and queued, formatted, in O(1) under a lock; the run's sender encodes the
queue into :class:`~cascade.interfaces.LogBatch` messages every ``batch_interval`` seconds.
What is over a budget is dropped and counted, and each batch says how many of which task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec

from cascade.interfaces import (
    Connector,
    DroppedLines,
    LogBatch,
    LogLevel,
    LogLine,
    logs_topic,
)
from cascade.interfaces.connector_kit import RateLimitedLogger

from ._stamp import Stamp

__all__ = ["LogForwarding", "RunLogs", "current_scope"]

_log = logging.getLogger("cascade.runtime.logs")
_encode = msgspec.json.Encoder().encode
_NAMED: dict[int, LogLevel] = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_BATCH_BYTES = 160 * 1024  # the lines of one message, below readers' 256 KiB
_OWN = "cascade."  # Cascade's own loggers: never forwarded (the sender's warnings among them)


@dataclass(frozen=True, slots=True)
class LogForwarding:
    """How an engine forwards its tasks' logs (``Engine(logs=LogForwarding(...))``).

    - ``level``: the lowest level forwarded (a name or a number; default ``INFO``). Only what
      the application's logging lets through reaches the engine: unconfigured, Python's
      logging lets ``WARNING`` and up through; ``logging.basicConfig(level=logging.INFO)``
      lets ``INFO`` through too.
    - ``lines_per_second``: each task's lines a second (a burst of as many is allowed);
      ``run_lines_per_second``: the run's, all tasks together. Beyond them lines are dropped
      (``rate``).
    - ``max_lines_per_task``: each task's lines in all (its attempts together); beyond,
      dropped (``budget``).
    - ``max_line_bytes``: a longer message (traceback included) is cut, and says so.
    - ``max_queue``: lines waiting for the sender at most; beyond, dropped (``queue``): a
      broker that is slow or away costs lines, never the run's memory or time.
    - ``batch_interval``: seconds between two batches at most while lines come.
    """

    level: int | str = logging.INFO
    lines_per_second: float = 500.0
    run_lines_per_second: float = 5_000.0
    max_lines_per_task: int = 100_000
    max_line_bytes: int = 4096
    max_queue: int = 50_000
    batch_interval: float = 0.1

    def __post_init__(self) -> None:
        for name in ("lines_per_second", "run_lines_per_second", "batch_interval"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"LogForwarding.{name} must be positive, not {value}")
        for name in ("max_lines_per_task", "max_line_bytes", "max_queue"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"LogForwarding.{name} must be at least 1, not {value}")
        _level_number(self.level)

    @property
    def level_number(self) -> int:
        """:attr:`level` as a number."""
        return _level_number(self.level)


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number


class _Bucket:
    """Tokens refilled at ``rate`` a second up to ``rate`` (a second's burst); starts full."""

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = now

    def take(self, now: float) -> bool:
        tokens = self.tokens
        if tokens < 1.0:
            tokens = min(self.rate, tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if tokens < 1.0:
                self.tokens = tokens
                return False
        self.tokens = tokens - 1.0
        return True


class _Task:
    """One task's lines so far (all its attempts) and its rate."""

    __slots__ = ("bucket", "n", "name")

    def __init__(self, name: str, rate: float, now: float) -> None:
        self.name = name
        self.n = 0
        self.bucket = _Bucket(rate, now)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a record logged in a task's attempt is tagged with."""

    logs: RunLogs
    task_id: str
    task: _Task
    attempt: int
    span_id: str | None


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "cascade_task_logs", default=None
)


def current_scope() -> _Scope | None:
    """The task attempt whose logs are being forwarded here, if any."""
    return _SCOPE.get()


class _Handler(logging.Handler):
    """The root logger's handler while some run forwards its logs: hands each record logged
    in a task to its run. Where logging has no handler of its own (unconfigured), it also
    does what Python's ``logging.lastResort`` would have done, which its presence disables."""

    def __init__(self, last_resort: bool) -> None:
        super().__init__(logging.NOTSET)
        self.last_resort = last_resort

    def handle(self, record: logging.LogRecord) -> bool:  # no filters, no lock: O(1) inside
        scope = _SCOPE.get()
        if scope is not None and not record.name.startswith(_OWN):
            scope.logs.take(scope, record)
        resort = logging.lastResort
        if self.last_resort and resort is not None and record.levelno >= resort.level:
            resort.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


class _Installed:
    """The one handler on the root logger, there while at least one run forwards."""

    lock = threading.Lock()
    users = 0
    handler: _Handler | None = None

    @classmethod
    def acquire(cls) -> None:
        with cls.lock:
            cls.users += 1
            if cls.handler is None:
                root = logging.getLogger()
                cls.handler = _Handler(last_resort=not root.handlers)
                root.addHandler(cls.handler)

    @classmethod
    def release(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.handler is not None:
                logging.getLogger().removeHandler(cls.handler)
                cls.handler = None


class RunLogs:
    """One run's log forwarding: its tasks' budgets, its queue, and the sender of its batches.

    :meth:`start` installs the handler and the sender; :meth:`scope` is what
    :meth:`enter` puts in the context of one task attempt; :meth:`aclose` sends what is
    queued and stops. :attr:`sent` and :attr:`dropped` count lines.
    """

    def __init__(
        self,
        connector: Connector,
        options: LogForwarding,
        *,
        run_id: str,
        org_id: str,
        project_id: str,
        prefix: str,
        sourced: bool = False,
        trace_id: str | None = None,
    ) -> None:
        self.connector = connector
        self.options = options
        self.topic = logs_topic(
            org_id, project_id, run_id, prefix, connector.source_id if sourced else None
        )
        self.sent = 0
        """Lines published."""
        self.dropped = 0
        """Lines dropped (over a budget, the queue full, or their batch not published)."""
        self._head = {
            "run_id": run_id,
            "org_id": org_id,
            "project_id": project_id,
            "source": connector.source_id,
        }
        self._trace_id = trace_id
        self._level = options.level_number
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, _Scope, int, logging.LogRecord, str]] = deque()
        self._drops: dict[tuple[str, str], list[Any]] = {}  # (task id, reason) -> [name, count]
        self._tasks: dict[str, _Task] = {}
        now = time.monotonic()
        self._run_bucket = _Bucket(options.run_lines_per_second, now)
        self._seq = 0
        self._stamp = Stamp()
        self._wake: asyncio.Event | None = None
        self._waking = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sender: asyncio.Task[None] | None = None
        self._closing = False
        self._log = RateLimitedLogger(_log)

    def start(self) -> None:
        """Take the records of this run's tasks from now on, and start the sender."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        _Installed.acquire()
        self._sender = self._loop.create_task(self._send_loop(), name="cascade-logs")

    def enter(self, task_id: str, task_name: str, attempt: int, span_id: str | None) -> None:
        """Tag what the current context logs from now on as this attempt's (the caller's
        context: an attempt's own asyncio task, or the copy its thread runs in)."""
        task = self._tasks.get(task_id)
        if task is None:
            task = self._tasks[task_id] = _Task(
                task_name, self.options.lines_per_second, time.monotonic()
            )
        _SCOPE.set(_Scope(self, task_id, task, attempt, span_id))

    def take(self, scope: _Scope, record: logging.LogRecord) -> None:
        """A record logged in one of this run's attempts: queue it, or drop and count it."""
        if record.levelno < self._level:
            return
        if self._closing:  # an abandoned thread's task, logging after the run's end
            with self._lock:
                self.dropped += 1
            return
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        now = time.monotonic()
        with self._lock:
            task = scope.task
            task.n = n = task.n + 1
            if n > self.options.max_lines_per_task:
                self._drop(scope.task_id, task.name, "budget", 1)
            elif not task.bucket.take(now) or not self._run_bucket.take(now):
                self._drop(scope.task_id, task.name, "rate", 1)
            elif len(self._queue) >= self.options.max_queue:
                self._drop(scope.task_id, task.name, "queue", 1)
            else:
                self._queue.append((scope.task_id, scope, n, record, message))
            if self._waking:
                return
            self._waking = True
        self._wake_sender()

    def _drop(self, task_id: str, name: str, reason: str, lines: int) -> None:
        self.dropped += lines
        drop = self._drops.get((task_id, reason))
        if drop is None:
            self._drops[(task_id, reason)] = [name, lines]
        else:
            drop[1] += lines

    def _wake_sender(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the run is over
                loop.call_soon_threadsafe(wake.set)

    async def aclose(self, timeout: float = 2.0) -> None:
        """Send what is queued (bounded by ``timeout``), then stop taking this run's records."""
        self._closing = True
        sender = self._sender
        if sender is not None and self._wake is not None:
            self._wake.set()
            done, _ = await asyncio.wait({sender}, timeout=timeout)
            if not done:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            self._sender = None
            _Installed.release()
        with self._lock:
            for task_id, scope, _n, _record, _message in self._queue:
                self._drop(task_id, scope.task.name, "queue", 1)
            self._queue.clear()

    async def _send_loop(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            if not self._closing:
                await asyncio.sleep(self.options.batch_interval)  # gathers a batch: pacing
            wake.clear()
            with self._lock:
                self._waking = False
                queued, self._queue = self._queue, deque()
                drops, self._drops = self._drops, {}
            await self._publish(queued, drops)
            if self._closing:
                with self._lock:
                    if not self._queue and not self._drops:
                        return

    async def _publish(
        self,
        queued: deque[tuple[str, _Scope, int, logging.LogRecord, str]],
        drops: dict[tuple[str, str], list[Any]],
    ) -> None:
        dropped = [
            DroppedLines(task_id=task_id, task_name=name, lines=lines, reason=reason)  # type: ignore[arg-type]
            for (task_id, reason), (name, lines) in drops.items()
        ]
        lines: list[LogLine] = []
        size = 0
        while queued:
            task_id, scope, n, record, message = queued.popleft()
            line = self._line(task_id, scope, n, record, message)
            lines.append(line)
            size += len(line.message) + 200
            if size >= _BATCH_BYTES:
                await self._send(lines, dropped)
                lines, dropped, size = [], [], 0
                await asyncio.sleep(0)  # a flood of lines must not hold up the run's tasks
        if lines or dropped:
            await self._send(lines, dropped)

    def _line(
        self, task_id: str, scope: _Scope, n: int, record: logging.LogRecord, message: str
    ) -> LogLine:
        limit = self.options.max_line_bytes
        if len(message) * 4 > limit:
            encoded = message.encode("utf-8", "replace")
            if len(encoded) > limit:
                kept = encoded[:limit].decode("utf-8", "ignore")
                message = f"{kept}… ({len(encoded) - len(kept.encode())} more bytes)"
        level = record.levelno
        named = _NAMED.get(level)
        second, micro = self._stamp(record.created)
        return LogLine(
            ts=f"{second.decode()}.{micro:06d}+00:00",
            task_id=task_id,
            task_name=scope.task.name,
            message=message,
            level=named or _nearest(level),
            attempt=scope.attempt,
            n=n,
            logger=record.name,
            level_number=None if named else max(0, min(100, level)),
            trace_id=self._trace_id,
            span_id=scope.span_id,
        )

    async def _send(self, lines: list[LogLine], dropped: list[DroppedLines]) -> None:
        self._seq += 1
        second, micro = self._stamp(time.time())
        batch = LogBatch(
            **self._head,
            seq=self._seq,
            ts=f"{second.decode()}.{micro:06d}+00:00",
            lines=lines,
            dropped=dropped,
        )
        try:
            await self.connector.publish(self.topic, _encode(batch), qos=0)
        except Exception as exc:
            with self._lock:
                self.dropped += len(lines)
            reason = str(exc) or "(without a message)"
            self._log.warning(
                "publish", "log batch publish failed: %s: %s", type(exc).__name__, reason
            )
        else:
            self.sent += len(lines)


def _nearest(level: int) -> LogLevel:
    """The named level at or below ``level`` (``DEBUG`` below 10)."""
    for number in (50, 40, 30, 20):
        if level >= number:
            return _NAMED[number]
    return "DEBUG"
