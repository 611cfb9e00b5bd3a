"""Forwarding what a run's tasks log: captured where they log it, sent in batches, never in
the way of the tasks.

While a run forwards its logs, one :class:`logging.Handler` on the root logger takes every
record that the application's logging lets through and that a task logged (the task's
attempt is in a context variable, which asyncio copies into everything the task starts and
the engine into the thread of a plain-function task). A record is counted against its
task's budgets and queued, formatted, in O(1) under a lock; the run's sender encodes the
queue into :class:`~cascade.interfaces.logs.LogBatch` messages every ``batch_interval`` seconds.
What is over a budget is dropped and counted, and each batch says how many of which task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec

from cascade.connector_kit import RateLimitedLogger, event_set
from cascade.interfaces import Connector
from cascade.interfaces.logs import DroppedLines, logs_topic
from cascade.interfaces.wire import LOG_LINE_FORMAT, LogLevel, log_batch_format, log_line_fields

from .._stamp import Stamp
from ._log_budgets import LineBucket, TaskLines, bucket_empty
from ._log_capture import SCOPE, Installed, Scope
from ._log_options import LogForwarding

__all__ = ["LogForwarding", "RunLogs"]

_log = logging.getLogger("cascade.runtime.logs")
_encode = msgspec.json.Encoder().encode
_NAMED: dict[int, LogLevel] = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_BATCH_BYTES = 160 * 1024  # the lines of one message, below readers' 256 KiB
_LEVELS = {name: name.encode() for name in _NAMED.values()}


_Queued = tuple[bytes, str]  # a line, encoded, and its task's id


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
        trace_id: str | None = None,
    ) -> None:
        self.connector = connector
        self.options = options
        self.topic = logs_topic(  # on the layout the connector publishes its source's on
            org_id,
            project_id,
            run_id,
            prefix,
            connector.source_id if connector.sourced_topics else None,
        )
        self.sent = 0
        """Lines published."""
        self.dropped = 0
        """Lines dropped (over a budget, the queue full, or their batch not published)."""
        # the batch, all but its number, time, lines and drops encoded once, as LogBatch's
        self._batch = log_batch_format(run_id, org_id, project_id, connector.source_id)
        self._trace_id = trace_id
        self._level = options.level_number
        self._lock = threading.Lock()
        self._queue: deque[_Queued] = deque()
        self._max_lines = options.max_lines_per_task
        self._max_queue = options.max_queue
        self._loggers: dict[str, bytes] = {}  # logger names, encoded
        self._drops: dict[tuple[str, str], list[Any]] = {}  # (task id, reason) -> [name, count]
        self._tasks: dict[str, TaskLines] = {}
        self._partial: dict[tuple[str, str], str] = {}  # a print's line until its newline
        self._run_bucket = LineBucket(options.run_lines_per_second, time.time())
        self._seq = 0
        self._stamp = Stamp()
        self._wake: asyncio.Event | None = None
        self._closed = asyncio.Event()
        self._waking = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sender: asyncio.Task[None] | None = None
        self._closing = False
        self._log = RateLimitedLogger(_log)

    @property
    def numbered(self) -> int:
        """Lines its tasks logged so far, the dropped ones too (each task's last number)."""
        with self._lock:
            return sum(task.n for task in self._tasks.values())

    def start(self) -> None:
        """Take the records of this run's tasks from now on, and start the sender."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        Installed.acquire(self.options.capture_print)
        self._sender = self._loop.create_task(self._send_loop(), name="cascade-logs")

    def enter(self, task_id: str, task_name: str, attempt: int, span_id: str | None) -> None:
        """Tag what the current context logs from now on as this attempt's (the caller's
        context: an attempt's own asyncio task, or the copy its thread runs in). Every
        attempt passes here: nothing is made until it logs."""
        SCOPE.set(Scope(self, task_id, task_name, attempt, span_id))

    def task(self, task_id: str, task_name: str) -> TaskLines:
        """The lines so far of ``task_id`` (all its attempts), and its rate."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                rate = self.options.lines_per_second
                task = self._tasks[task_id] = TaskLines(task_name, rate, time.time())
            return task

    def fields(self, task_id: str, task_name: str, attempt: int, span_id: str | None) -> bytes:
        """An attempt's fields of its lines, encoded."""
        return log_line_fields(task_id, task_name, attempt, self._trace_id, span_id)

    def printed(self, scope: Scope, stream: str, text: str) -> None:
        """What an attempt wrote on ``stream``: a line at each newline (the rest waits)."""
        key = (scope.task_id, stream)
        with self._lock:
            text = self._partial.pop(key, "") + text
            *lines, rest = text.split("\n")
            if rest:
                self._partial[key] = rest[: self.options.max_line_bytes * 4]
        level = logging.INFO if stream == "stdout" else logging.WARNING
        for line in lines:
            record = logging.LogRecord("", level, "", 0, line, None, None)
            self.take(scope, record, stream)

    def take(self, scope: Scope, record: logging.LogRecord, stream: str | None = None) -> None:
        """A record logged in one of this run's attempts: queue it, or drop and count it.

        Only a line that is kept is formatted (encoded, at once); under the lock, so that the
        queue is in the order of each task's line numbers."""
        level = record.levelno
        if level < self._level:
            return
        now = record.created  # the buckets' clock: the time logging took already
        task = scope.task
        with self._lock:
            if self._closing:  # an abandoned thread's task, logging after the run's end
                self.dropped += 1
                return
            task.n = n = task.n + 1
            bucket, run = task.bucket, self._run_bucket
            if n > self._max_lines:
                self._drop(scope.task_id, task.name, "budget", 1)
            elif (bucket.tokens < 1.0 and bucket_empty(bucket, now)) or (
                run.tokens < 1.0 and bucket_empty(run, now)
            ):
                self._drop(scope.task_id, task.name, "rate", 1)
            elif len(self._queue) >= self._max_queue:
                self._drop(scope.task_id, task.name, "queue", 1)
            else:
                bucket.spend(now)
                run.spend(now)
                message = record.getMessage()
                if record.exc_info or record.exc_text:
                    message = _with_traceback(message, record)
                # bytes, not the record: what waits holds no object the GC must walk
                line = self._line(scope, n, record.created, level, record.name, message, stream)
                self._queue.append((line, scope.task_id))
            if self._waking:
                return
            self._waking = True
        self._wake_sender()

    def take_from(self, scope: Scope, lines: Iterable[tuple[Any, ...]], over: int) -> None:
        """What an attempt logged and printed elsewhere (a worker process), handed over when it
        ended: each record, ``(created, levelno, logger name, message)``, taken as if logged
        here (if this process's logging lets that logger's records of that level through),
        each print, ``(stream, text)``, as if printed here; and ``over`` lines it did not
        keep, dropped over the task's budget."""
        for line in lines:
            if len(line) == 2:
                self.printed(scope, line[0], line[1])
                continue
            created, level, name, message = line
            if not logging.getLogger(None if name == "root" else name).isEnabledFor(level):
                continue
            record = logging.LogRecord(name, level, "", 0, message, None, None)
            record.created = created
            self.take(scope, record)
        if over:
            with self._lock:
                self._drop(scope.task_id, scope.task_name, "budget", over)

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
            self._closed.set()
            self._wake.set()
            done, _ = await asyncio.wait({sender}, timeout=timeout)
            if not done:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            self._sender = None
            Installed.release(self.options.capture_print)
        with self._lock:
            for _line, task_id in self._queue:
                self._drop(task_id, self._tasks[task_id].name, "queue", 1)
            self._queue.clear()

    async def _send_loop(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            if not self._closing:  # gathers a batch (pacing), cut short by the run's end
                await event_set(self._closed, self.options.batch_interval)
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
        self, queued: deque[_Queued], drops: dict[tuple[str, str], list[Any]]
    ) -> None:
        dropped = [
            DroppedLines(task_id=task_id, task_name=name, lines=lines, reason=reason)  # type: ignore[arg-type]
            for (task_id, reason), (name, lines) in drops.items()
        ]
        lines: list[bytes] = []
        size = 0
        while queued:
            encoded = queued.popleft()[0]
            lines.append(encoded)
            size += len(encoded)
            if size >= _BATCH_BYTES:
                await self._send(lines, dropped)
                lines, dropped, size = [], [], 0
                await asyncio.sleep(0)  # a flood of lines must not hold up the run's tasks
        if lines or dropped:
            await self._send(lines, dropped)

    def _line(
        self,
        scope: Scope,
        n: int,
        created: float,
        level: int,
        logger: str,
        message: str,
        stream: str | None = None,
    ) -> bytes:
        """One :class:`~cascade.interfaces.logs.LogLine`, encoded: formatted straight, as the
        telemetry's task events are (every line a task logs passes here)."""
        limit = self.options.max_line_bytes
        if len(message) * 4 > limit:
            encoded = message.encode("utf-8", "replace")
            if len(encoded) > limit:
                kept = encoded[:limit].decode("utf-8", "ignore")
                message = f"{kept}… ({len(encoded) - len(kept.encode())} more bytes)"
        name = self._loggers.get(logger)
        if name is None:
            name = self._loggers[logger] = _encode(logger)
        named = _NAMED.get(level)
        fields = (
            scope.fields if stream is None else scope.fields + b'"stream":"%b",' % (stream.encode())
        )
        stamp = self._stamp
        whole = int(created)
        second = stamp.prefix if whole == stamp.whole_second else stamp(created)[0]
        micro = int((created - whole) * 1_000_000)
        if named is not None:
            return LOG_LINE_FORMAT % (
                second,
                micro,
                fields,
                n,
                _LEVELS[named],
                name,
                _encode(message),
            )
        extra = b'"level_number":%d,' % max(0, min(100, level))
        return LOG_LINE_FORMAT % (
            second,
            micro,
            fields + extra,
            n,
            _LEVELS[_nearest(level)],
            name,
            _encode(message),
        )

    async def _send(self, lines: list[bytes], dropped: list[DroppedLines]) -> None:
        self._seq += 1
        second, micro = self._stamp(time.time())
        payload = self._batch % (
            self._seq,
            second,
            micro,
            b",".join(lines),
            _encode(dropped),
        )
        try:
            await self.connector.publish(self.topic, payload, qos=0)
        except Exception as exc:
            with self._lock:
                self.dropped += len(lines)
            reason = str(exc) or "(without a message)"
            self._log.warning(
                "publish", "log batch publish failed: %s: %s", type(exc).__name__, reason
            )
        else:
            self.sent += len(lines)


def _with_traceback(message: str, record: logging.LogRecord) -> str:
    """The message with the record's traceback, formatted once (as a Formatter would)."""
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return f"{message}\n{record.exc_text}" if record.exc_text else message


def _nearest(level: int) -> LogLevel:
    """The named level at or below ``level`` (``DEBUG`` below 10)."""
    for number in (50, 40, 30, 20):
        if level >= number:
            return _NAMED[number]
    return "DEBUG"
