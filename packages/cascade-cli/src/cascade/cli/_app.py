"""The whole `cascade` app: every command of :data:`._registry.COMMANDS`, in its order.

What ``cascade --help`` lists, and what tests and embedders invoke (``CliRunner().invoke(app,
...)``); the console script builds an app of just the command asked for (:mod:`._main`, where
an app of any commands is built).
"""

from __future__ import annotations

from ._main import new_app
from ._registry import COMMANDS
from .plumbing._context import CliContext

__all__ = ["CliContext", "app"]

app = new_app(*COMMANDS)
