"""The engines' summaries as `cascade status --json` prints them: every field present.

A summary is sent with the fields at their default left out (``omit_defaults``); a reader of
the JSON gets each one, zeros included. Built from ``msgspec.to_builtins`` and a template of
each struct's defaults, not field by field: 10,000 engines listing 20 runs each are 200,000
runs to print.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cascade.interfaces import EngineSummary, RunTally, SummaryRun, TaskTally
from cascade.interfaces.reader import FleetTotals

__all__ = ["fleet_json", "summary_json"]


def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """``cls``'s fields that have a plain default, with it (the nested ones are filled apart)."""
    return {
        field.name: field.default
        for field in msgspec.structs.fields(cls)
        if field.default is not msgspec.NODEFAULT
    }


_SUMMARY, _RUN = _defaults(EngineSummary), _defaults(SummaryRun)
_RUNS, _TASKS = _defaults(RunTally), _defaults(TaskTally)


def _run(sent: dict[str, Any]) -> dict[str, Any]:
    return {**_RUN, **sent, "tasks": {**_TASKS, **sent["tasks"]}}


def summary_json(summary: EngineSummary) -> dict[str, Any]:
    """``summary`` as JSON-ready builtins, every field present (its listed runs' too)."""
    sent = msgspec.to_builtins(summary)
    return {
        **_SUMMARY,
        **sent,
        "runs": {**_RUNS, **sent.get("runs", {})},
        "tasks": {**_TASKS, **sent.get("tasks", {})},
        "listed": [_run(run) for run in sent.get("listed", ())],
    }


def fleet_json(totals: FleetTotals) -> dict[str, Any]:
    """The engines' summaries added up (:class:`~cascade.interfaces.reader.FleetTotals`):
    ``engines``, ``online``, ``without_summary``, ``live_runs``, ``runs`` and ``tasks`` by
    state, ``events_per_s``, ``dropped`` and ``stranded`` (live runs of offline engines)."""
    return {
        "engines": totals.engines,
        "online": totals.online,
        "without_summary": totals.without_summary,
        "live_runs": totals.live_runs,
        "runs": {**_RUNS, **msgspec.to_builtins(totals.runs)},
        "tasks": {**_TASKS, **msgspec.to_builtins(totals.tasks)},
        "events_per_s": totals.events_per_s,
        "dropped": totals.dropped,
        "stranded": totals.stranded,
    }
