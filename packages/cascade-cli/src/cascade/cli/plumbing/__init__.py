"""What every command is built from: its context (how it runs and fails), the broker options
it takes, the view and history options, `--as` and `--reason`, the listen address, and the
guards of its output (a closed pipe, one-line errors, the task dump).

Each command takes its :class:`CliContext` with ``CliContext.of(ctx)``; tests pass their own
(a connector factory of their own, a recording console).

Its names are imported from their modules when first used: every command imports a module
of this package (``._exits``, ``._broker``) first, and this package's own import is then all
it pays for it (a command's start is what it imports; see :mod:`cascade.cli._main`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

if TYPE_CHECKING:
    from ._broker import BrokerOptions, ConnectorFactory, mqtt_connector
    from ._context import CliContext
    from ._debug import dump_tasks, install_task_dump
    from ._invocation import cascade_command
    from ._listen import parse_listen

__all__, __getattr__, __dir__ = lazy_exports(__name__)
