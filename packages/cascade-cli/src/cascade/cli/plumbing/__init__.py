"""What every command is built from: its context (how it runs and fails), the broker options
it takes, the view and history options, `--as` and `--reason`, the listen address, and the
guards of its output (a closed pipe, one-line errors, the task dump).

Each command takes its :class:`CliContext` with ``CliContext.of(ctx)``; tests pass their own
(a connector factory of their own, a recording console).
"""

from ._broker import BrokerOptions, ConnectorFactory, mqtt_connector
from ._context import CliContext
from ._debug import dump_tasks, install_task_dump
from ._invocation import cascade_command
from ._listen import parse_listen

__all__ = [
    "BrokerOptions",
    "CliContext",
    "ConnectorFactory",
    "cascade_command",
    "dump_tasks",
    "install_task_dump",
    "mqtt_connector",
    "parse_listen",
]
