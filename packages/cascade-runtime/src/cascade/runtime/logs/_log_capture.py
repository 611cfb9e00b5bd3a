"""Where a task's log records and prints are caught: the attempt each context belongs to, the
root logger's handler, and the print wrappers, installed while some run forwards."""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

from ._log_budgets import TaskLines
from ._log_options import LogForwarding

__all__ = ["SCOPE", "Installed", "LineSink", "Scope"]

_OWN = "cascade."  # Cascade's own loggers: never forwarded (the sender's warnings among them)


class LineSink(Protocol):
    """What a task's records and prints are handed to: its run's log forwarding (``RunLogs``)."""

    options: LogForwarding

    def task(self, task_id: str, task_name: str) -> TaskLines:
        """The lines so far of ``task_id`` (all its attempts), and its rate."""
        ...

    def fields(self, task_id: str, task_name: str, attempt: int, span_id: str | None) -> bytes:
        """An attempt's fields of its lines, encoded."""
        ...

    def take(self, scope: Scope, record: logging.LogRecord, stream: str | None = None) -> None:
        """A record logged in one of the run's attempts."""
        ...

    def printed(self, scope: Scope, stream: str, text: str) -> None:
        """What an attempt wrote on ``stream``."""
        ...

    def take_from(self, scope: Scope, lines: Iterable[tuple[Any, ...]], over: int) -> None:
        """What an attempt logged and printed elsewhere (a worker process), and the lines it
        did not keep."""
        ...


class Scope(msgspec.Struct, gc=False):
    """What a record logged in a task's attempt is tagged with. Made for every attempt, so
    it costs little until the attempt logs: its task's budget (``task``) and the line's
    fields that are the attempt's, encoded (``fields``: ``"task_id":…,"attempt":…,``), are
    made at its first line."""

    # gc=False: the collector does not track it (nothing it holds refers back to it, so it is
    # never in a cycle); a tracked object per attempt, alive while the attempt runs, made
    # young-generation collections run ~40 % more often in a run of coroutine tasks
    logs: LineSink
    task_id: str
    task_name: str
    attempt: int
    span_id: str | None
    _task: TaskLines | None = None
    _fields: bytes | None = None

    @property
    def task(self) -> TaskLines:
        """The task's lines so far and its rate (shared by its attempts)."""
        task = self._task
        if task is None:
            task = self._task = self.logs.task(self.task_id, self.task_name)
        return task

    @property
    def fields(self) -> bytes:
        """The attempt's fields of a line, encoded."""
        fields = self._fields
        if fields is None:
            fields = self._fields = self.logs.fields(
                self.task_id, self.task_name, self.attempt, self.span_id
            )
        return fields


SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "cascade_task_logs", default=None
)


class _Handler(logging.Handler):
    """The root logger's handler while some run forwards its logs: hands each record logged
    in a task to its run. Where logging has no handler of its own (unconfigured), it also
    does what Python's ``logging.lastResort`` would have done, which its presence disables."""

    def __init__(self, last_resort: bool) -> None:
        super().__init__(logging.NOTSET)
        self.last_resort = last_resort

    def handle(self, record: logging.LogRecord) -> bool:  # no filters, no lock: O(1) inside
        scope = SCOPE.get()
        if scope is not None and not record.name.startswith(_OWN):
            scope.logs.take(scope, record)
        if self.last_resort:
            resort = logging.lastResort
            if resort is not None and record.levelno >= resort.level:
                resort.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


class _Printed:
    """``sys.stdout`` or ``sys.stderr`` while a run captures prints: what a task of such a
    run writes is also its log lines; everything is written on as before."""

    def __init__(self, target: Any, stream: str) -> None:
        self.target = target
        """The stream it writes on."""
        self._stream = stream

    def write(self, text: str) -> int:
        scope = SCOPE.get()
        if scope is not None and scope.logs.options.capture_print:
            scope.logs.printed(scope, self._stream, text)
        return int(self.target.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


class Installed:
    """The one handler on the root logger, there while at least one run forwards, and the
    print wrappers while at least one captures prints."""

    lock = threading.Lock()
    users = 0
    printers = 0
    handler: _Handler | None = None

    @classmethod
    def acquire(cls, prints: bool) -> None:
        with cls.lock:
            cls.users += 1
            if cls.handler is None:
                root = logging.getLogger()
                cls.handler = _Handler(last_resort=not root.handlers)
                root.addHandler(cls.handler)
            if prints:
                cls.printers += 1
                if cls.printers == 1:
                    sys.stdout = _Printed(sys.stdout, "stdout")
                    sys.stderr = _Printed(sys.stderr, "stderr")

    @classmethod
    def release(cls, prints: bool) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.handler is not None:
                logging.getLogger().removeHandler(cls.handler)
                cls.handler = None
            if prints:
                cls.printers -= 1
                if cls.printers == 0:  # put back unless someone replaced them since
                    for name in ("stdout", "stderr"):
                        stream = getattr(sys, name)
                        if isinstance(stream, _Printed):
                            setattr(sys, name, stream.target)
