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
"""

from ._engine import Engine
from ._errors import (
    CacheError,
    CascadeRuntimeError,
    CycleError,
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
    TaskRetrying,
    TaskRunning,
    TaskSkipped,
)
from ._run import CancelReport
from ._run_now import run
from ._stats import EngineStats
from .constraints._constraints import ConstraintManager, ConstraintStats
from .executors._dask import DaskExecutor
from .executors._executor import Executor, RunExecutor
from .executors._processes import ProcessExecutor
from .executors._threads import ThreadExecutor
from .link._counters import RunCounters
from .link._telemetry import TelemetrySubscriber
from .logs._logs import LogForwarding
from .results._results import ManifestTask, ResultMissing, ResultStore, RunManifest
from .serve._schedule import Schedule
from .workflow._amounts import CapacityError
from .workflow._cache_policy import CachePolicy, FileExistenceCache
from .workflow._gate import GateError, GateRejected, gate
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
    LazyResult,
    MapError,
    MappedLazyResult,
    RetryPolicy,
    Task,
    task,
    unmapped,
)
from .workflow._task_context import TaskContext, current_task

__all__ = [
    "CacheError",
    "CachePolicy",
    "CancelReport",
    "CapacityError",
    "CascadeRuntimeError",
    "ConstraintManager",
    "ConstraintStats",
    "CycleError",
    "DaskExecutor",
    "Engine",
    "EngineStats",
    "Event",
    "EventBus",
    "EventHandler",
    "Executor",
    "ExecutorError",
    "FileExistenceCache",
    "GateError",
    "GateRejected",
    "InvalidTargetError",
    "LazyResult",
    "MapError",
    "MappedLazyResult",
    "Param",
    "ParamError",
    "ProcessExecutor",
    "RouteMissing",
    "Router",
    "Schedule",
    "ShellError",
    "shell",
    "LogForwarding",
    "ManifestTask",
    "RerunError",
    "Resource",
    "ResourceError",
    "ResourceFailed",
    "ResourceMissing",
    "ResultMissing",
    "ResultStore",
    "RetryPolicy",
    "RunCancelledError",
    "RunFinished",
    "RunCounters",
    "RunExecutor",
    "RunManifest",
    "RunStarted",
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
    "TaskRetrying",
    "TaskRunning",
    "TaskSkipped",
    "TelemetrySubscriber",
    "WorkerLost",
    "ThreadExecutor",
    "current_task",
    "gate",
    "inject",
    "resource",
    "run",
    "task",
    "unmapped",
]
