"""The `cascade` command: watch, status, pause, resume, limit and demo."""

from ._app import CliContext, app, main
from ._broker import BrokerOptions, ConnectorFactory
from ._state import WatchState

__all__ = ["BrokerOptions", "CliContext", "ConnectorFactory", "WatchState", "app", "main"]
