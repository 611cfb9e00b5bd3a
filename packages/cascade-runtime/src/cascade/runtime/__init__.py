"""Cascade's workflow engine: tasks, events, live telemetry and live constraints.

```python
from cascade.runtime import Engine, task

@task
async def fetch(i: int) -> int:
    return i * 2

@task
def total(values: list[int]) -> int:
    return sum(values)

result = await Engine().run(total([fetch(i) for i in range(10)]))
```

A name this module does not have is looked up among the providers of the
``cascade.providers`` entry-point group (``cs.format``, ``cs.read.text``, a third
party's ``cs.my.thing``): see :class:`Provider`.
"""

from typing import TYPE_CHECKING, Any

from cascade.interfaces.lazy import lazy_exports

# Each public name is imported from its module when first used (lazy_exports): a script that
# runs a workflow pays for the engine, not for serving, schedules, Dask or the results' store.
if TYPE_CHECKING:
    from ._command_line import create_cli
    from ._engine import Engine
    from ._errors import (
        CacheError,
        CascadeRuntimeError,
        CycleError,
        DependencyMissingError,
        ExecutorError,
        InvalidTargetError,
        RerunError,
        RunCancelledError,
        TaskFailedError,
        WorkerLost,
    )
    from ._events import (
        Event,
        EventBus,
        EventHandler,
        ResourceAcquired,
        ResourceReleased,
        RunFinished,
        RunStarted,
        TaskBlocked,
        TaskCached,
        TaskCancelled,
        TaskCompleted,
        TaskEvent,
        TaskFailed,
        TaskHeld,
        TaskMapped,
        TaskQueued,
        TaskRetrying,
        TaskRunning,
        TaskSkipped,
    )
    from ._graph_json import WorkflowJsonError, from_json, to_json
    from ._override import override_resource
    from ._providers import Provider, ProviderMissing
    from ._recv import RecvTimeout
    from ._run import CancelReport
    from ._run_now import run
    from ._stats import EngineStats
    from ._subflow import SubflowError
    from ._visualize import dry_run, visualize
    from .constraints._constraints import ConstraintManager, ConstraintStats
    from .executors._dask import DaskExecutor
    from .executors._executor import Executor, RunExecutor
    from .executors._processes import ProcessExecutor
    from .executors._threads import ThreadExecutor
    from .link._counters import RunCounters
    from .link._telemetry import TelemetrySubscriber
    from .logs._logs import LogForwarding
    from .results._results import ManifestTask, ResultMissing, ResultStore, RunManifest
    from .serve._file_events import FileEvent, FileWatch, FileWatchError
    from .serve._schedule import Schedule
    from .serve._trigger import MAX_TRIGGER_DEPTH, RunEnd, SignalEvent, Trigger
    from .workflow._amounts import CapacityError
    from .workflow._bounds import BoundExceeded
    from .workflow._cache_policy import CachePolicy, FileExistenceCache
    from .workflow._env import Env
    from .workflow._formatting import FormatFieldRefused
    from .workflow._from_params import PathRefused
    from .workflow._gate import GateError, GateRejected, gate
    from .workflow._http import HttpResponse, HttpStatusError
    from .workflow._jump import Jump, JumpError, bind, select_jump
    from .workflow._param import Param, ParamError
    from .workflow._resource import (
        Resource,
        ResourceError,
        ResourceFailed,
        ResourceMissing,
        inject,
        resource,
    )
    from .workflow._router import RouteMissing, Router
    from .workflow._shell import ShellError, shell
    from .workflow._task import (
        ChainError,
        LazyResult,
        MapError,
        MappedLazyResult,
        RetryPolicy,
        Task,
        pipeline,
        sequence,
        task,
        unmapped,
    )
    from .workflow._task_context import TaskContext, current_task

__all__ = [
    "BoundExceeded",
    "CacheError",
    "CachePolicy",
    "CancelReport",
    "CapacityError",
    "CascadeRuntimeError",
    "ChainError",
    "ConstraintManager",
    "ConstraintStats",
    "CycleError",
    "DaskExecutor",
    "DependencyMissingError",
    "Engine",
    "EngineStats",
    "Env",
    "Event",
    "EventBus",
    "EventHandler",
    "Executor",
    "ExecutorError",
    "FileExistenceCache",
    "FormatFieldRefused",
    "GateError",
    "GateRejected",
    "HttpResponse",
    "HttpStatusError",
    "InvalidTargetError",
    "Jump",
    "JumpError",
    "LazyResult",
    "MapError",
    "MappedLazyResult",
    "Param",
    "ParamError",
    "PathRefused",
    "ProcessExecutor",
    "Provider",
    "ProviderMissing",
    "RecvTimeout",
    "RouteMissing",
    "Router",
    "Schedule",
    "MAX_TRIGGER_DEPTH",
    "RunEnd",
    "SignalEvent",
    "FileEvent",
    "FileWatch",
    "FileWatchError",
    "Trigger",
    "ShellError",
    "shell",
    "LogForwarding",
    "ManifestTask",
    "RerunError",
    "Resource",
    "ResourceError",
    "ResourceFailed",
    "ResourceMissing",
    "ResourceAcquired",
    "ResourceReleased",
    "ResultMissing",
    "ResultStore",
    "RetryPolicy",
    "RunCancelledError",
    "RunFinished",
    "RunCounters",
    "RunExecutor",
    "RunManifest",
    "RunStarted",
    "SubflowError",
    "Task",
    "TaskContext",
    "TaskBlocked",
    "TaskCached",
    "TaskCancelled",
    "TaskCompleted",
    "TaskEvent",
    "TaskFailed",
    "TaskFailedError",
    "TaskHeld",
    "TaskMapped",
    "TaskQueued",
    "TaskRetrying",
    "TaskRunning",
    "TaskSkipped",
    "TelemetrySubscriber",
    "WorkerLost",
    "WorkflowJsonError",
    "ThreadExecutor",
    "bind",
    "create_cli",
    "current_task",
    "dry_run",
    "from_json",
    "gate",
    "inject",
    "override_resource",
    "resource",
    "pipeline",
    "run",
    "select_jump",
    "sequence",
    "task",
    "to_json",
    "unmapped",
    "visualize",
]

_exported = lazy_exports(__name__)[1]  # __all__ above is the list; these import its names

if TYPE_CHECKING:
    # The providers cascade-runtime ships, typed; at run time they are found as any other.
    from .workflow._library_types import (
        dict as dict,
    )
    from .workflow._library_types import (
        format as format,
    )
    from .workflow._library_types import (
        fs as fs,
    )
    from .workflow._library_types import (
        http as http,
    )
    from .workflow._library_types import (
        io as io,
    )
    from .workflow._library_types import (
        load_yaml as load_yaml,
    )
    from .workflow._library_types import (
        lookup as lookup,
    )
    from .workflow._library_types import (
        read as read,
    )
    from .workflow._library_types import (
        recv as recv,
    )
    from .workflow._library_types import (
        sql as sql,
    )
    from .workflow._library_types import (
        subflow as subflow,
    )
    from .workflow._library_types import (
        template as template,
    )
    from .workflow._library_types import (
        wait as wait,
    )
    from .workflow._library_types import (
        write as write,
    )


def __getattr__(name: str) -> Any:
    """A public name, from its module on first use; else ``cs.<name>``: the provider ``name``
    (or the namespace of those below it)."""
    if name in __all__:
        return _exported(name)
    if name.startswith("__"):  # probes such as __wrapped__ never read the entry points
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._providers import providers

    return providers.get(name)


def __dir__() -> list[str]:
    """The module's names, those not imported yet included."""
    return sorted({*globals(), *__all__})
