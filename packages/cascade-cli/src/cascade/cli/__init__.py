"""The `cascade` command: watch, status, pause, resume, limit, cancel, forget, demo, dashboard,
and the history: record, runs, run, tasks, logs, audit.

Its rooms: :mod:`.commands` (one module, or folder, per command), :mod:`.plumbing` (what every
command is built from), :mod:`.rendering` (what the terminal shows), :mod:`.access` (a broker's
ACL from a team's roles). What its views show is :mod:`cascade.reader`'s model of the
fleet; what it steers with is :mod:`cascade.control`.
"""

from typing import TYPE_CHECKING, Any

from ._main import main

if TYPE_CHECKING:
    from ._app import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    """``app``, built on first use: ``main`` builds only the command it runs (see ``_main``)."""
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
