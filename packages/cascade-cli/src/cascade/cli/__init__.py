"""The `cascade` command: watch, status, pause, resume, limit, forget and demo."""

from . import _forget  # noqa: F401  (registers `cascade forget` on the app)
from ._app import CliContext, app, main
from ._broker import BrokerOptions, ConnectorFactory
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
