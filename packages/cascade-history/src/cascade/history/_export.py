"""The history's lists as files for a spreadsheet or a notebook: CSV or JSON Lines.

One writer for every export (``cascade runs/tasks/audit/logs --format`` and the dashboard's
downloads), so the two agree byte for byte. The columns are the ``--json`` fields, in their
order; the fields that are times (epoch seconds in ``--json``) are ISO 8601 in UTC. JSON Lines
keeps every other value as JSON has it (a nested object stays one). CSV (the standard
library's writer, a header line first, ``\\n`` line ends) writes a nested value as its JSON
text, ``None`` as an empty cell, ``true``/``false`` as JSON does, and guards a spreadsheet
from the text in it, which came from the broker: a cell that would start a formula (``=``,
``+``, ``-``, ``@``, a tab, a carriage return) gets a ``'`` before it, as OWASP advises, and
control characters (a terminal acts on them) are written escaped, as ``\\x1b``. JSON Lines is
the lossless one.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_TIMES",
    "EXPORT_FORMATS",
    "RUN_COLUMNS",
    "RUN_TIMES",
    "TASK_COLUMNS",
    "ExportFormatName",
    "export_lines",
    "iso_utc",
]

ExportFormatName = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormatName, ...] = ("csv", "jsonl")
"""The formats a list exports in."""

RUN_COLUMNS = (
    "run_id", "org_id", "project_id", "source", "status", "started_at", "ended_at", "duration",
    "error", "planned_tasks", "tasks", "dropped_telemetry", "missing_events", "trace_id",
    "refused", "received_at", "vouched", "claims", "name", "origin", "rerun_of", "replaced_by",
)  # fmt: skip
"""A run's columns: ``RunSummary.to_json``'s fields."""
RUN_TIMES = ("started_at", "ended_at", "received_at")
"""A run's columns that are times."""
TASK_COLUMNS = (
    "task_name", "runs", "executions", "failures", "failure_rate", "p50_ms", "p95_ms", "max_ms",
    "approximate",
)  # fmt: skip
"""A task name's columns: ``TaskStats.to_json``'s fields."""
AUDIT_COLUMNS = (
    "at", "action", "scope", "type", "params", "expires_at", "ttl", "topic", "constraint_id",
    "reason", "issued_by", "issued_at", "run_id", "source", "request_id", "stopped", "decided",
    "vouched", "count", "last_at", "started",
)  # fmt: skip
"""An audit row's columns: ``AuditEvent.to_json``'s fields."""
AUDIT_TIMES = ("at", "expires_at", "issued_at", "last_at")
"""An audit row's columns that are times."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what starts a formula in a spreadsheet's cell
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def iso_utc(seconds: float) -> str:
    """``2026-11-24T18:00:00.123456+00:00``: epoch ``seconds`` in ISO 8601, in UTC."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value)
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    return "'" + text if text.startswith(_FORMULA) else text


def export_lines(
    format_: ExportFormatName,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    times: Collection[str] = (),
) -> Iterator[str]:
    """``rows`` (``--json`` objects) in ``format_``, a line at a time, each ending in ``\\n``
    (CSV: the header first): their ``columns`` (a column a row lacks is empty), each of
    ``times`` (epoch seconds, or ``None``) as :func:`iso_utc`."""
    if format_ not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {format_!r}")
    times = set(times)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def csv_line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    if format_ == "csv":
        yield csv_line(columns)
    for row in rows:
        value = {key: row.get(key) for key in columns}
        for key in times & value.keys():
            seconds = value[key]
            if seconds is not None:
                value[key] = iso_utc(seconds)
        if format_ == "csv":
            yield csv_line(_cell(field) for field in value.values())
        else:
            yield json.dumps(value) + "\n"
