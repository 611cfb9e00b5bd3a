"""`--format csv|jsonl`: what the history commands (`runs`, `tasks`, `audit`, `logs`) export, one
row a run, task, audit entry or log line, to a spreadsheet or a notebook.

The columns are the ``--json`` fields, in their order; times (epoch seconds in ``--json``) are
ISO 8601 in UTC. JSON Lines keeps every value as JSON has it (a nested object stays one);
CSV (the standard library's writer, a header line first) writes a nested value as its JSON
text, ``None`` as an empty cell, and guards a spreadsheet from the text in it: a cell that
would start a formula gets a ``'`` before it, and control characters (a terminal acts on
them) are written escaped, as ``\\x1b``. JSON Lines is the lossless one.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import IO, Annotated, Any

import typer

__all__ = ["Export", "ExportFormat", "Exporter", "export_format", "iso_utc"]


class ExportFormat(str, Enum):
    """What ``--format`` writes."""

    csv = "csv"
    jsonl = "jsonl"


Export = Annotated[
    ExportFormat | None,
    typer.Option(
        "--format",
        metavar="csv|jsonl",
        help="Export, one row a line on stdout: csv (a header, then the rows) or jsonl (JSON "
        "Lines). The columns are --json's fields, times in ISO 8601 UTC.",
        case_sensitive=False,
        show_default=False,
    ),
]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what starts a formula in a spreadsheet's cell
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def export_format(format_: ExportFormat | None, json_output: bool) -> ExportFormat | None:
    """The format asked for; ``--json`` and ``--format`` together are a usage error (exit 2)."""
    if format_ is not None and json_output:
        raise typer.BadParameter("give --json or --format, not both", param_hint="'--format'")
    return format_


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


class Exporter:
    """Writes rows (JSON objects with ``columns`` as keys) in ``format_``, each ``times``
    field (epoch seconds, or ``None``) as :func:`iso_utc`."""

    def __init__(
        self,
        format_: ExportFormat,
        columns: Sequence[str],
        *,
        times: Collection[str] = (),
        out: IO[str] | None = None,
    ) -> None:
        self.format = format_
        self.columns = list(columns)
        self.times = set(times)
        self.out = out if out is not None else sys.stdout
        self._csv: Any = None
        if format_ is ExportFormat.csv:
            self._csv = csv.writer(self.out, lineterminator="\n")
            self._csv.writerow(self.columns)

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write ``rows``, one a line: their ``columns`` (a field the columns lack is left
        out, one they have that a row lacks is empty: tests keep them the same)."""
        for row in rows:
            value = {key: row.get(key) for key in self.columns}
            for key in self.times:
                seconds = value.get(key)
                if seconds is not None:
                    value[key] = iso_utc(seconds)
            if self._csv is not None:
                self._csv.writerow([_cell(field) for field in value.values()])
            else:
                self.out.write(json.dumps(value) + "\n")
        self.out.flush()
