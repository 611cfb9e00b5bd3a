"""A history list as a file to download: CSV or JSON Lines (``?format=csv|jsonl``).

The rows are the objects ``cascade runs --json``, ``cascade tasks --json`` and ``cascade
audit --json`` print (each record's ``to_json()``), so a download and the CLI's output agree
field for field: JSON Lines is one such object a line; CSV has one column per field, in the
same order, with the same names, and a field holding an object or a list (a run's ``tasks``
by state, its ``origin``) is that value's JSON in its cell. ``None`` is an empty cell.

Every text came from the broker: a cell a spreadsheet would take for a formula (starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, as OWASP
advises for CSV files opened in spreadsheets; JSON Lines keeps every value as it is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "FORMATS",
    "MAX_EXPORT",
    "Export",
    "audit_columns",
    "export_format",
    "file_name",
    "run_columns",
    "task_columns",
    "to_csv",
    "to_jsonl",
]

MAX_EXPORT = 10_000
"""The most rows one download holds (``limit``, up to this; more matching: ``Cascade-More``)."""


@dataclass(frozen=True)
class Export:
    """One download format: its ``media_type`` and its file name's ``suffix``."""

    media_type: str
    suffix: str


FORMATS = {
    "csv": Export("text/csv; charset=utf-8; header=present", "csv"),
    # not registered with IANA; the name JSON Lines' own page and OpenAPI's registry use
    "jsonl": Export("application/jsonl; charset=utf-8", "jsonl"),
}
"""The formats a list downloads in, by their ``?format=`` name."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def export_format(params: Mapping[str, str]) -> Export | None:
    """The download ``?format=`` asks for (``None``: none, or ``json``: the list's JSON);
    ``ValueError`` naming the formats for any other."""
    name = params.get("format") or "json"
    if name == "json":
        return None
    found = FORMATS.get(name)
    if found is None:
        raise ValueError("format must be json, csv or jsonl")
    return found


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON says it, and the JSON Lines
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA):
        return "'" + text
    return text


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``rows`` as CSV (RFC 4180: a header line of ``columns``, CRLF line ends), UTF-8."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue().encode("utf-8")


def to_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``rows`` as JSON Lines: one JSON object a line, each line ending in ``\\n``, each as
    ``--json`` prints it (ASCII: every other character escaped)."""
    return b"".join(json.dumps(row).encode("ascii") + b"\n" for row in rows)


def file_name(what: str, export: Export, now: float) -> str:
    """``cascade-runs-20261126T050607Z.csv``: what it holds and when it was made (UTC)."""
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"cascade-{what}-{stamp}.{export.suffix}"


def run_columns() -> list[str]:
    """The fields of a run as ``cascade runs --json`` prints it (``RunSummary.to_json``)."""
    from cascade.history import RunSummary

    blank = RunSummary(
        run_id="", org_id="", project_id="", source="", status="", started_at=0.0,
        ended_at=None, error=None, planned_tasks=None, tasks={}, dropped_telemetry=0,
        missing_events=None,
    )  # fmt: skip
    return list(blank.to_json())


def task_columns() -> list[str]:
    """The fields of a task name's statistics as ``cascade tasks --json`` prints them."""
    from cascade.history import TaskStats

    return list(TaskStats("", 0, 0, 0, 0.0, 0.0, 0.0).to_json())


def audit_columns() -> list[str]:
    """The fields of an audit row as ``cascade audit --json`` prints it."""
    from cascade.history import AuditEvent

    return list(AuditEvent(0.0, "", None, None, None, None, "", None).to_json())
