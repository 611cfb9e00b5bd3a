"""The engines' summaries as `cascade status --json` prints them: every field present.

A summary is sent with the fields at their default left out (``omit_defaults``); a reader of
the JSON gets each one, zeros included, built from ``msgspec.to_builtins`` and a template of
each struct's defaults.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cascade.interfaces.summaries import EngineSummary, RunTally, TaskTally
from cascade.reader import FleetTotals

__all__ = ["fleet_json", "summary_json"]


def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """``cls``'s fields that have a plain default, with it (the nested ones are filled apart)."""
    return {
        field.name: field.default
        for field in msgspec.structs.fields(cls)
        if field.default is not msgspec.NODEFAULT
    }


_SUMMARY = _defaults(EngineSummary)
_RUNS, _TASKS = _defaults(RunTally), _defaults(TaskTally)


def summary_json(summary: EngineSummary) -> dict[str, Any]:
    """``summary`` as JSON-ready builtins, every field present, its listed runs left out (the
    engines' view: at 10,000 engines, 20 runs each would be 200,000 runs; ``listed`` says how
    many it lists, `cascade watch` and the dashboard show them; ``live_names``: the names of
    the live ones it lists, each once)."""
    sent = msgspec.to_builtins(summary)
    return {
        **_SUMMARY,
        **sent,
        "runs": {**_RUNS, **sent.get("runs", {})},
        "tasks": {**_TASKS, **sent.get("tasks", {})},
        "listed": len(summary.listed),
        "live_names": list(
            dict.fromkeys(r.name for r in summary.listed if r.status == "Running" and r.name)
        ),
    }


def fleet_json(totals: FleetTotals) -> dict[str, Any]:
    """The engines' summaries added up (:class:`~cascade.reader.FleetTotals`):
    ``engines``, ``online``, ``without_summary``, ``unconfirmed`` (a summary from a source
    with no status, not counted), ``live_runs`` (``live_without_summary`` of them known from
    the events of engines that send no summary: none for a view that reads no events),
    ``runs`` and ``tasks`` by
    state, ``events_per_s``, ``dropped``, ``stranded`` (runs live on offline engines at their
    end that no server carries on) and ``carried`` (those another server carries on)."""
    return {
        "engines": totals.engines,
        "online": totals.online,
        "without_summary": totals.without_summary,
        "unconfirmed": totals.unconfirmed,
        "live_runs": totals.live_runs,
        "live_without_summary": totals.live_without_summary,
        "runs": {**_RUNS, **msgspec.to_builtins(totals.runs)},
        "tasks": {**_TASKS, **msgspec.to_builtins(totals.tasks)},
        "events_per_s": totals.events_per_s,
        "dropped": totals.dropped,
        "stranded": totals.stranded,
        "carried": totals.carried,
    }
