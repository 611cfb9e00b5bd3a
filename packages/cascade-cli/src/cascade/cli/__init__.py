"""The `cascade` command: watch, status, pause, resume, limit, cancel, forget, demo, dashboard,
and the history: record, runs, run, tasks, logs, audit.

Its rooms: :mod:`.commands` (one module, or folder, per command), :mod:`.plumbing` (what every
command is built from), :mod:`.rendering` (what the terminal shows), :mod:`.access` (a broker's
ACL from a team's roles). What its views show is :mod:`cascade.interfaces.reader`'s model of the
fleet; what it steers with is :mod:`cascade.control`.
"""

from ._app import app, main

__all__ = ["app", "main"]
