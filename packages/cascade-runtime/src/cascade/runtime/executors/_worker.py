"""What runs in a worker process: one attempt of a task, with its ``current_task()`` set and
what it logs (and prints, when asked) collected, given back with its result or failure.

Everything crosses as pickles. The attempt's function and arguments come pickled by the engine
and are loaded here, so that a function the worker cannot import fails the attempt with why,
instead of killing the worker; its result goes back pickled, so that one that cannot be is the
attempt's failure, with its lines; an exception that cannot be is given back as an
:class:`~cascade.runtime.ExecutorError` with its type, text and traceback.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any

from cascade.interfaces import CascadeError

from .._errors import ExecutorError
from ..workflow._resource import ResourceFailed
from ..workflow._task import Task
from ..workflow._task_context import CURRENT, TaskContext

__all__ = ["Lines", "Outcome", "WorkerTraceback", "run_attempt", "sendable_function"]


class _TaskFunction:
    """A task's function by the name of its task: ``@task`` puts the task where pickle looks
    the function up (``module.name``), so the function is sent as that name and unwrapped
    where it is loaded."""

    __slots__ = ("module", "qualname")

    def __init__(self, module: str, qualname: str) -> None:
        self.module = module
        self.qualname = qualname

    def __reduce__(self) -> tuple[Any, ...]:
        return (_task_function, (self.module, self.qualname))


def _task_function(module: str, qualname: str) -> Callable[..., Any]:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found.fn if isinstance(found, Task) else found


def sendable_function(fn: Callable[..., Any]) -> Any:
    """What to pickle for ``fn``: itself, or, where a task decorated it and took its name in
    its module, that name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        return fn
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, Task) and found.fn is fn:
        return _TaskFunction(module, qualname)
    return fn


_OWN = "cascade."  # Cascade's own loggers: never forwarded, as in the engine's process

Line = tuple[Any, ...]
"""A record, ``(created, levelno, logger name, message)``, or a print, ``(stream, text)``."""


class Lines:
    """What one attempt logs at ``level`` and up (and prints, with ``prints``), at most
    ``max_lines`` of it (``over`` counts the rest), each message cut at ``max_chars``."""

    __slots__ = ("level", "lines", "max_chars", "max_lines", "over", "prints")

    def __init__(self, level: int, max_lines: int, max_chars: int, prints: bool) -> None:
        self.level = level
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.prints = prints
        self.lines: list[Line] = []
        self.over = 0

    def add(self, line: Line) -> None:
        if len(self.lines) < self.max_lines:
            self.lines.append(line)
        else:
            self.over += 1

    def record(self, record: logging.LogRecord) -> None:
        if record.levelno < self.level or record.name.startswith(_OWN):
            return
        if len(self.lines) >= self.max_lines:
            self.over += 1
            return
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string: said, as logging's own handler would
            message = f"{record.msg!r} (it could not be formatted: {type(exc).__name__}: {exc})"
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        self.add((record.created, record.levelno, record.name, message[: self.max_chars]))


class _Collecting(logging.Handler):
    """The worker's root handler: hands every record to the attempt running, if it collects;
    where the worker's logging had no handler, it also does what ``logging.lastResort``
    would have (its presence disables it)."""

    def __init__(self, last_resort: bool) -> None:
        super().__init__(logging.NOTSET)
        self.last_resort = last_resort
        self.lines: Lines | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        lines = self.lines
        if lines is not None:
            lines.record(record)
        if self.last_resort:
            resort = logging.lastResort
            if resort is not None and record.levelno >= resort.level:
                resort.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        self.handle(record)


class _Printed:
    """``sys.stdout`` or ``sys.stderr`` while an attempt that captures prints runs."""

    def __init__(self, target: Any, stream: str, lines: Lines) -> None:
        self.target = target
        self._stream = stream
        self._lines = lines

    def write(self, text: str) -> int:
        self._lines.add((self._stream, text[: self._lines.max_chars]))
        return int(self.target.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


_handler: _Collecting | None = None


def _collect(lines: Lines) -> _Collecting:
    """The worker's root handler, installed at its first attempt that forwards; the root
    logger let down to ``lines.level`` (the engine's process decides what it forwards, by its
    own loggers' levels)."""
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = _Collecting(last_resort=not root.handlers)
        root.addHandler(_handler)
    if root.level > lines.level or root.level == logging.NOTSET:
        root.setLevel(lines.level)
    return _handler


class Outcome:
    """What an attempt gave back: ``result`` (pickled) or ``error`` (and the worker's
    ``traceback``), the ``lines`` it logged and printed, ``over``: lines beyond the most
    kept, ``worker``: where it ran, where its executor says (a Dask worker's address), and
    ``kept``: what the worker did to keep its result in the run's store, where it was asked
    to (a :class:`~cascade.runtime.results._on_worker.Report`)."""

    __slots__ = ("error", "kept", "lines", "over", "result", "traceback", "worker")

    def __init__(
        self,
        result: bytes | None = None,
        error: BaseException | None = None,
        traceback: str = "",
        lines: list[Line] | None = None,
        over: int = 0,
    ) -> None:
        self.result = result
        self.error = error
        self.traceback = traceback
        self.lines = lines
        self.over = over
        self.worker: str | None = None
        self.kept: Any = None

    def __getstate__(self) -> tuple[Any, ...]:
        return (
            self.result,
            self.error,
            self.traceback,
            self.lines,
            self.over,
            self.worker,
            self.kept,
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.result, self.error, self.traceback, self.lines, self.over, self.worker, self.kept) = (
            state
        )


class WorkerTraceback(CascadeError):
    """The traceback of an exception raised in a worker, set as its ``__cause__`` once it is
    back in the engine's process, so that formatting it shows where it was raised (never
    raised itself: a cause, as ``concurrent.futures`` gives a process pool's)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


def _sendable(exc: BaseException, name: str, text: str) -> BaseException:
    """``exc`` if it survives pickling both ways, else a stand-in with its type and text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception as why:
        return ExecutorError(
            f"task {name} raised {type(exc).__qualname__}: {exc} (in a worker process: the "
            f"exception could not be sent back as itself, {type(why).__name__}: {why}; its "
            "traceback is this error's cause)"
        )
    return exc


def run_attempt(
    payload: bytes,
    context: TaskContext | None,
    lines: Lines | None,
    loads: Callable[[bytes], Any] = pickle.loads,
    then: Callable[[Any], Any] | None = None,
) -> Outcome:
    """One attempt, in a worker: ``payload`` the pickled ``(fn, args, kwargs)`` (loaded by
    ``loads``); ``context`` what ``current_task()`` gives in it; ``lines`` what to collect of
    what it logs; ``then``, called with the value it returned, gives the outcome's ``kept``."""
    name = repr(context.task_name) if context is not None else "(outside a run)"
    handler = _collect(lines) if lines is not None else None
    token = CURRENT.set(context)
    printed = lines is not None and lines.prints
    streams = (sys.stdout, sys.stderr)
    try:
        try:
            fn, args, kwargs = loads(payload)
        except ResourceFailed as exc:  # a per-worker resource's setup, run as it was loaded
            text = "".join(traceback.format_exception(exc))
            return _with_lines(Outcome(error=_sendable(exc, name, text), traceback=text), lines)
        except Exception as exc:
            error = ExecutorError(
                f"task {name} cannot be loaded in the worker process: {type(exc).__name__}: "
                f"{exc} (its function must be importable where the workers start: defined at "
                "the top level of a module, or of a script run as __main__)"
            )
            return Outcome(error=error, traceback=traceback.format_exc())
        if handler is not None:
            handler.lines = lines
        if printed:
            assert lines is not None
            sys.stdout = _Printed(streams[0], "stdout", lines)
            sys.stderr = _Printed(streams[1], "stderr", lines)
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # what the task raised, whatever it is, is its failure
            text = "".join(traceback.format_exception(exc))
            return _with_lines(Outcome(error=_sendable(exc, name, text), traceback=text), lines)
        finally:
            if handler is not None:
                handler.lines = None
            if printed:
                sys.stdout, sys.stderr = streams
        try:
            result = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            error = ExecutorError(
                f"task {name} returned a {type(value).__qualname__} that cannot be sent back "
                f"from the worker process: {type(exc).__name__}: {exc}"
            )
            return _with_lines(Outcome(error=error, traceback=traceback.format_exc()), lines)
        outcome = Outcome(result=result)
        if then is not None:
            outcome.kept = then(value)
        return _with_lines(outcome, lines)
    finally:
        CURRENT.reset(token)


def _with_lines(outcome: Outcome, lines: Lines | None) -> Outcome:
    if lines is not None:
        outcome.lines = lines.lines
        outcome.over = lines.over
    return outcome
