"""The `cascade` command: watch, status, pause, resume, limit, forget and demo."""

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
