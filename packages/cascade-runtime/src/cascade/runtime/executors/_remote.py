"""An attempt that runs in another process, as its engine's side sees it: its call pickled with
its ``current_task()`` and what to collect of its log lines on the way out, and on the way back
its lines handed to the run's logs and its result loaded (or its failure, with the traceback
of where it was raised)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from .._errors import ExecutorError
from .._steps import describe
from ..logs._log_capture import SCOPE, Scope
from ..workflow._task_context import TaskContext, current_task
from ._worker import Lines, Outcome, WorkerTraceback, sendable_function

__all__ = ["RemoteAttempt"]


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class RemoteAttempt:
    """One attempt of the calling task, ready to send: ``payload`` (its function as ``send``
    gives it, by name where it can be, and its arguments, pickled by ``dumps``), ``context``
    (its ``current_task()``), ``lines`` (what to collect of what it logs; ``None`` where its
    run forwards none) and ``scope`` (its run's log scope here)."""

    __slots__ = ("context", "ended", "lines", "payload", "scope", "task_id")

    def __init__(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        where: str,
        dumps: Callable[[Any], bytes] = _pickle,
        send: Callable[[Any], Any] = sendable_function,
        ended: Callable[[], None] | None = None,
    ) -> None:
        self.ended = ended  # what to call once it has ended where it ran: end()
        self.context: TaskContext | None = current_task()
        context = self.context
        name = repr(context.task_name) if context is not None else getattr(fn, "__name__", "?")
        self.task_id = context.task_id if context is not None else name
        try:
            self.payload = dumps((send(fn), args, kwargs))
        except Exception as exc:
            raise ExecutorError(
                f"task {name} cannot run in {where}: its arguments cannot be pickled "
                f"({describe(exc)}); a resource or an open file or connection stays in the "
                "engine's process (run such a task on a ThreadExecutor)"
            ) from exc
        self.scope: Scope | None = SCOPE.get()
        self.lines: Lines | None = None
        if self.scope is not None:
            options = self.scope.logs.options
            self.lines = Lines(
                options.level_number,
                options.max_lines_per_task,
                options.max_line_bytes * 4,
                options.capture_print,
            )

    def end(self) -> None:
        """It has ended where it ran, or will never run: say so, once."""
        ended, self.ended = self.ended, None
        if ended is not None:
            ended()

    def settle(self, outcome: Outcome, held: bool = False) -> tuple[Any, BaseException | None]:
        """What the attempt gave back: its lines to the run's logs; its result (none where it
        is ``held`` where it ran), or what it raised (the traceback of where, its cause)."""
        scope = self.scope
        if scope is not None and (outcome.lines or outcome.over):
            scope.logs.take_from(scope, outcome.lines or (), outcome.over)
        failure = outcome.error
        if held:
            return None, None
        if failure is not None:
            if outcome.traceback:
                failure.__cause__ = WorkerTraceback(outcome.traceback)
            return None, failure
        try:
            return pickle.loads(outcome.result or b""), None
        except Exception as exc:
            return None, ExecutorError(
                f"task {self.task_id}'s result cannot be loaded in the engine's process: "
                f"{describe(exc)}"
            )
