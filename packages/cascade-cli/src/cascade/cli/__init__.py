"""The `cascade` command: watch, status, pause, resume, limit, forget, demo, dashboard, and
the history: record, runs, run, tasks, audit.

What its views show is :mod:`cascade.interfaces.reader`'s model of the fleet.
"""

from cascade.control import SHORT_ID, set_constraints
from cascade.interfaces.reader import (
    TelemetrySwitch,
    inert,
    subscribe_constraints,
    subscribe_statuses,
)

from ._app import app, main
from ._broker import BrokerOptions, ConnectorFactory, mqtt_connector
from ._context import CliContext
from ._debug import dump_tasks, install_task_dump
from ._holds_text import NOTHING_HOLDS, holds_text
from ._listen import parse_listen
from ._render import engines_table, render_status, render_watch
from ._status_json import status_json
from ._times import TimeFormat

__all__ = [
    "NOTHING_HOLDS",
    "SHORT_ID",
    "BrokerOptions",
    "CliContext",
    "ConnectorFactory",
    "TelemetrySwitch",
    "TimeFormat",
    "app",
    "dump_tasks",
    "engines_table",
    "holds_text",
    "inert",
    "install_task_dump",
    "main",
    "mqtt_connector",
    "parse_listen",
    "render_status",
    "render_watch",
    "set_constraints",
    "status_json",
    "subscribe_constraints",
    "subscribe_statuses",
]
