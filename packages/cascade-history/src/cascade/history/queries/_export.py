"""The history's lists as files for a spreadsheet or a notebook: CSV or JSON Lines.

One writer for every export (``cascade runs/tasks/audit/logs --format`` and the dashboard's
downloads), so the two agree byte for byte. The columns are the ``--json`` fields, in their
order; the fields that are times (epoch seconds in ``--json``) are ISO 8601 in UTC. JSON Lines
keeps every other value as JSON has it (a nested object stays one). CSV (the standard
library's writer, a header line first, ``\\n`` line ends) writes a nested value as its JSON
text, ``None`` as an empty cell, ``true``/``false`` as JSON does, and guards a spreadsheet,
a terminal and a naive line splitter from the text in it, which came from the broker:

- a cell keeps one line break only, LF (or CRLF), and such a cell is quoted; every other
  one (a lone CR, VT, FF, FS, GS, RS, NEL, U+2028, U+2029) is written escaped, as the other
  control characters (a terminal acts on them) are, ``\\x0d``, ``\\x1b``, ``\\u2028``: no
  text makes a row of its own, however the file is split into lines;
- each line of a cell that would start a formula (``=``, ``+``, ``-``, ``@``, a tab, a
  carriage return) gets a ``'`` before it, as OWASP advises, the cell's first line and every
  one after a line break.

JSON Lines is the lossless one.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from ..records._audit_records import AUDIT_COLUMNS

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
    "run_id",
    "org_id",
    "project_id",
    "source",
    "status",
    "started_at",
    "ended_at",
    "lost_at",
    "duration",
    "error",
    "planned_tasks",
    "tasks",
    "dropped_telemetry",
    "missing_events",
    "trace_id",
    "refused",
    "received_at",
    "vouched",
    "claims",
    "name",
    "origin",
    "rerun_of",
    "replaced_by",
    "decisions",
    "line",
)
"""A run's columns: ``RunSummary.to_json``'s fields."""
RUN_TIMES = ("started_at", "ended_at", "lost_at", "received_at")
"""A run's columns that are times."""
TASK_COLUMNS = (
    "task_name",
    "runs",
    "executions",
    "failures",
    "failure_rate",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "approximate",
)
"""A task name's columns: ``TaskStats.to_json``'s fields."""
AUDIT_TIMES = ("at", "expires_at", "issued_at", "last_at")
"""An audit row's columns that are times."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what starts a formula in a spreadsheet's cell
# what a CSV cell shows escaped: control characters, and every line break but LF and the CR
# of a CRLF (which the writer quotes)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")


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
    text = _CONTROL.sub(_escaped, text)
    return "\n".join("'" + line if line.startswith(_FORMULA) else line for line in text.split("\n"))


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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
