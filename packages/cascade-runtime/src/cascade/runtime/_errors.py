"""Errors a run can raise."""

from __future__ import annotations

import weakref
from typing import Any

from cascade.interfaces import CascadeError

__all__ = [
    "CacheError",
    "CascadeRuntimeError",
    "CycleError",
    "DependencyMissingError",
    "ExecutorError",
    "FailedInLostRun",
    "InvalidTargetError",
    "RerunError",
    "RunCancelledError",
    "TaskFailedError",
    "ValueLost",
    "WorkerLost",
]


class CascadeRuntimeError(CascadeError):
    """Base class of the errors raised by :class:`~cascade.runtime.Engine` (a
    :class:`~cascade.interfaces.CascadeError`)."""


class FailedInLostRun(CascadeRuntimeError):
    """What a task's last attempt raised in the run a carry-on carries on (``lost_run``, whose
    engine died), as that run's journal said it (``error``, ``attempt``): the carry-on holds
    or fails the task with it, its retry budget spent there."""

    def __init__(self, lost_run: str, attempt: int, error: str) -> None:
        self.lost_run = lost_run
        self.attempt = attempt
        self.error = error
        super().__init__(f"attempt {attempt} failed in run {lost_run}, whose engine died: {error}")


class InvalidTargetError(CascadeRuntimeError, TypeError):
    """The target of a run is not a lazy result, nor a list, tuple or dict of them.

    Raised before anything runs.
    """


class ExecutorError(CascadeRuntimeError, ValueError):
    """A task cannot run where it is placed: ``@task(executor=...)`` on a coroutine function
    (coroutine tasks run on the engine's loop), a name the engine has no executor for, or a
    function that a worker process cannot load (a lambda, a function defined inside another;
    raised before anything runs), and, as a task's failure, arguments or a result that
    cannot cross to or from a worker process. The message names the task and what to do."""


class CycleError(CascadeRuntimeError):
    """The task graph has a cycle; ``tasks`` names the tasks on it. Raised before anything runs."""

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        super().__init__("task graph has a cycle: " + " -> ".join(tasks))


class DependencyMissingError(CascadeRuntimeError):
    """A run's target has no result: its task (or an item's, of a list, tuple or dict target)
    was skipped (a false condition, a route not taken, an upstream task skipped or a
    decision to skip it) and no task failed. The Cascade engine's name and fields:
    ``task_id`` is the target's task, ``arg_name`` where in the target it is (``<Target
    Output>``, ``<Target Output>[1]``, ``<Target Output>['key']``), ``dependency_id`` the
    task whose skip left it without one (itself, or the first skipped upstream); ``run_id``
    the run, which ended ``Succeeded`` as its tasks did (on the wire, in its manifest)."""

    def __init__(
        self, task_id: str, arg_name: str, dependency_id: str, *, run_id: str | None = None
    ) -> None:
        self.task_id = task_id
        self.arg_name = arg_name
        self.dependency_id = dependency_id
        self.run_id = run_id
        why = (
            "it was skipped"
            if dependency_id == task_id
            else f"it was skipped, as {dependency_id} upstream was"
        )
        of_run = f" (run {run_id})" if run_id else ""
        super().__init__(
            f"the run's target {task_id} ({arg_name}) has no result: {why} (a false "
            f"condition, a route not taken, or a decision to skip){of_run}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_dependency_missing, (self.task_id, self.arg_name, self.dependency_id, self.run_id))


def _dependency_missing(
    task_id: str, arg_name: str, dependency_id: str, run_id: str | None
) -> DependencyMissingError:
    return DependencyMissingError(task_id, arg_name, dependency_id, run_id=run_id)


class RerunError(CascadeRuntimeError, ValueError):
    """A rerun cannot be done: the run it names is not in the engine's results store (or is
    ambiguous, or the engine keeps no results), a task it names is not in the workflow, or
    a rerun of the same run is live in this engine. Raised before anything runs."""


class CacheError(CascadeRuntimeError, ValueError):
    """``with_cache`` cannot be done as asked: a policy that is not one, an ``expire`` that is
    not seconds, or a run of a task cached in the results store by an engine that keeps no
    results (raised when the run starts, naming the task)."""


class TaskFailedError(CascadeRuntimeError):
    """A task failed (after its retries), so the run failed.

    ``task_name`` and ``task_id`` name the first task that failed and
    ``exception`` is what it raised (also the ``__cause__``). Tasks that
    depended on it were skipped; independent tasks still ran.
    ``failed`` lists the ids of every task that failed in the run, and ``run_id`` names the
    run (``None`` when whoever raised it did not say), first in the message:
    ``run 3f2a...: task 'load' (load-3) failed: ValueError: ...``. ``task_failed`` is the
    message without the run, as the run's ``ENGINE_STOPPED`` ``error`` has it (on the run's
    own topic).

    It is also an instance of the class of the task's exception, as the existing Cascade
    engine, Prefect, Dask and ``concurrent.futures`` raise a task's own exception: a caller's
    ``except ValueError:`` around a run still catches a task's ``ValueError``, and
    ``except TaskFailedError:`` every failed run. Where that class cannot be joined (it is no
    ``Exception``, or Python refuses the union), it is a plain ``TaskFailedError``.
    """

    def __new__(
        cls,
        task_name: str,
        task_id: str,
        exception: BaseException,
        failed: list[str],
        run_id: str | None = None,
    ) -> TaskFailedError:
        joined = _joined(cls, type(exception))
        # the next __new__ in the joined class's order: an OSError's own, where it is one
        made: TaskFailedError = super(TaskFailedError, joined).__new__(joined)
        return made

    def __init__(
        self,
        task_name: str,
        task_id: str,
        exception: BaseException,
        failed: list[str],
        run_id: str | None = None,
    ) -> None:
        self.task_name = task_name
        self.task_id = task_id
        self.exception = exception
        self.failed = failed
        self.run_id = run_id
        more = f" (and {len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        self.task_failed = (
            f"task {task_name!r} ({task_id}) failed: {type(exception).__name__}: {exception}{more}"
        )
        # BaseException's own: the task's class may take other arguments, or none
        BaseException.__init__(
            self, self.task_failed if run_id is None else f"run {run_id}: {self.task_failed}"
        )

    def __str__(self) -> str:
        return BaseException.__str__(self)  # not the task's class's, which reads its own fields

    def __repr__(self) -> str:
        return f"TaskFailedError({BaseException.__str__(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            TaskFailedError,
            (self.task_name, self.task_id, self.exception, self.failed, self.run_id),
        )


# one class per exception class a run failed with, made once: TaskFailedError and it
_JOINED: weakref.WeakKeyDictionary[type, type[TaskFailedError]] = weakref.WeakKeyDictionary()


def _joined(base: type[TaskFailedError], cause: type[BaseException]) -> type[TaskFailedError]:
    """``base`` joined with the class of the task's exception, where they can be joined."""
    if base is not TaskFailedError or not issubclass(cause, Exception):
        return base
    if issubclass(cause, TaskFailedError):  # a nested run's (a subflow's): already both
        return cause
    joined = _JOINED.get(cause)
    if joined is None:
        try:
            joined = type(
                "TaskFailedError",
                (TaskFailedError, cause),
                {"__module__": TaskFailedError.__module__, "__qualname__": "TaskFailedError"},
            )
        except Exception:  # a layout or metaclass Python cannot join, a final class, a hook
            joined = TaskFailedError
        _JOINED[cause] = joined
    return joined


class RunCancelledError(CascadeRuntimeError):
    """The run was cancelled (:meth:`~cascade.runtime.Engine.cancel`, or ``cascade cancel``).

    ``run_id`` names it; ``issued_by`` and ``reason`` are what the canceller said (``None``
    when it said nothing). Its running coroutine tasks were cancelled, its plain-function
    tasks already running in threads were left to finish (Python cannot stop a thread) and
    their results discarded, and nothing new started.
    """

    def __init__(
        self, run_id: str, issued_by: str | None = None, reason: str | None = None
    ) -> None:
        self.run_id = run_id
        self.issued_by = issued_by
        self.reason = reason
        said = (f" by {issued_by}" if issued_by else "") + (f": {reason}" if reason else "")
        super().__init__(f"run {run_id} was cancelled{said}")


class WorkerLost(CascadeRuntimeError, RuntimeError):
    """An attempt failed because the worker that ran it (or held it, queued) died: killed, out
    of memory, crashed in C code. The attempt counts: the task's retries or hold apply, and
    its next attempt goes to a worker that is alive (a process pool is made again)."""


class ValueLost(WorkerLost):
    """An attempt failed because a result it takes, held on a Dask worker, was lost with that
    worker. Its task is not retried (each attempt would fail the same: the task that made the
    result is never run again unseen, and a run never runs a completed task again); a hold
    applies. A rerun of the run runs both."""
