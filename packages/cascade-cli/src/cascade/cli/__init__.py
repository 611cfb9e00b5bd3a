"""The `cascade` command: watch, status, pause, resume, limit, forget, demo, dashboard, and
the history: record, runs, run, tasks, audit."""

from ._app import app, main
from ._broker import BrokerOptions, ConnectorFactory
from ._context import CliContext
from ._inert import inert
from ._state import WatchState
from ._views import ConnectionView, EngineView, RunView, TaskView

__all__ = [
    "BrokerOptions",
    "CliContext",
    "ConnectionView",
    "ConnectorFactory",
    "EngineView",
    "RunView",
    "TaskView",
    "WatchState",
    "app",
    "inert",
    "main",
]
