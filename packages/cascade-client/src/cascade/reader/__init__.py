"""The reader model: what a reader of the broker knows of the fleet.

:class:`ReaderModel` folds the messages a reader receives (telemetry, engines' status
and summaries, constraints) into runs and their tasks (:class:`RunView`, :class:`TaskView`), engines
(:class:`EngineView`) and the constraints in force, with what it missed (gaps, per source),
what it refused (what no engine of a run can have sent) and what it ignored (malformed or
oversized messages). Views render it and never read messages themselves: `cascade watch`
and `status`, the dashboard, the Prometheus exporter. It needs no rendering library, and
nothing of the protocol package (:mod:`cascade.interfaces`) imports it::

    model = ReaderModel(prefix=connector.topic_prefix)
    await connector.subscribe(telemetry_filter(prefix=prefix), model.apply)
    await connector.subscribe(status_filter(prefix), model.apply)
    await subscribe_summaries(connector, model.apply)  # engines' summaries
    await connector.subscribe_constraints(model.apply)  # on any broker
    ...
    model.observe_connection(connector.is_connected)  # now and then
    model.prune()                                     # now and then
    for run in model.runs.values(): ...
    for held in held_tasks(model): ...  # the tasks held for a decision, fleet-wide
    for engine in model.visible_engines(offline_max_age=3600)[0]: ...
    model.fleet()  # the engines' summaries added up: a fleet without its events

Times are epoch seconds (``float``). An engine's :attr:`EngineView.last_seen` comes from
the timestamps its messages carry, never from when they arrived. Memory is bounded: a
finished run keeps its counts and a few failures, not its tasks, finished runs are
forgotten beyond :attr:`ReaderModel.keep_runs` or after :attr:`ReaderModel.keep_for`
seconds, and a text field is kept cut to :data:`KEPT` characters (:func:`truncate`).

Task logs have a follower of their own, :class:`LogFollower` (fed the messages of
``logs_filter``): each run's last lines (:class:`RunLogs`), with the lines its engine dropped
and those missed, counted per task (:class:`TaskLogCounts`)::

    logs = LogFollower(prefix=connector.topic_prefix)
    await connector.subscribe(logs_filter(run_id=run_id, prefix=prefix), logs.apply)
    for heard in logs.runs[run_id].lines(task="load_*", level=logging.WARNING): ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ages import parse_age
    from ._answers import (
        MAX_ANSWER_TASKS,
        MAX_SNAPSHOT_PARTS,
        answer_part_refusal,
        answer_stamped_ahead,
        snapshot_events,
    )
    from ._asker import SnapshotAsker
    from ._bounded_text import (
        KEPT,
        MARK,
        truncate,
    )
    from ._fleet import (
        MAX_MORE_LIVE,
        MAX_PLACES,
        FleetTotals,
        counted_summary,
        fleet_totals,
    )
    from ._fleet_switch import (
        DEFAULT_FLEET_THRESHOLD,
        FLEET_CHECK,
        LEAVE_BELOW,
        TelemetrySwitch,
        keep_switching,
        next_mode,
    )
    from ._gaps import (
        MAX_DIGESTS,
        MAX_SEQ_JUMP,
        GapCounter,
        Seen,
        SourceGaps,
    )
    from ._held import (
        HeldTask,
        held_tasks,
    )
    from ._inert import (
        SHOWN,
        inert,
    )
    from ._logs import (
        DEFAULT_KEEP_BYTES,
        DEFAULT_KEEP_LINES,
        MAX_LOG_RUNS,
        MAX_LOG_TASKS,
        HeardBatch,
        HeardLine,
        LogFollower,
        RunLogs,
        TaskLogCounts,
        cut_message,
        line_matches,
    )
    from ._model import (
        DEFAULT_KEEP_FOR,
        DEFAULT_KEEP_RUNS,
        ReaderModel,
    )
    from ._presence import (
        ENDED_FOLD_AFTER,
        EngineRows,
        ended_cleanly,
    )
    from ._refusals import (
        MAX_CLOCK_SKEW,
        REASON_BEYOND,
        REASON_CONFLICT,
        REASON_FOREIGN,
        REASON_FUTURE,
        REASON_INCONSISTENT,
        REASON_MISMATCH,
        REASON_NOT_ITS_PLACE,
        REASON_NOT_ITS_TOPIC,
        REASON_UNASKED,
        REFUSAL_REASONS,
        Refusals,
        ahead,
    )
    from ._refused import refused_by_source
    from ._silence import (
        FLAP_WINDOW,
        FLAPS,
        SILENT_AFTER,
        silence_line,
        silent_engines,
    )
    from ._subscriptions import (
        ROLLCALL_WAIT,
        subscribe_statuses,
        subscribe_summaries,
    )
    from ._timestamps import parse_timestamp
    from ._views import (
        FINISHED_STATES,
        LAST_TIMESTAMP,
        ConnectionView,
        EngineView,
        RunView,
        TaskView,
    )

__all__ = [
    "DEFAULT_FLEET_THRESHOLD",
    "DEFAULT_KEEP_BYTES",
    "DEFAULT_KEEP_FOR",
    "DEFAULT_KEEP_LINES",
    "DEFAULT_KEEP_RUNS",
    "ENDED_FOLD_AFTER",
    "FINISHED_STATES",
    "FLAPS",
    "FLAP_WINDOW",
    "FLEET_CHECK",
    "KEPT",
    "LAST_TIMESTAMP",
    "LEAVE_BELOW",
    "MARK",
    "MAX_ANSWER_TASKS",
    "MAX_CLOCK_SKEW",
    "MAX_DIGESTS",
    "MAX_LOG_RUNS",
    "MAX_LOG_TASKS",
    "MAX_MORE_LIVE",
    "MAX_PLACES",
    "MAX_SEQ_JUMP",
    "MAX_SNAPSHOT_PARTS",
    "REASON_BEYOND",
    "REASON_CONFLICT",
    "REASON_FOREIGN",
    "REASON_FUTURE",
    "REASON_INCONSISTENT",
    "REASON_MISMATCH",
    "REASON_NOT_ITS_PLACE",
    "REASON_NOT_ITS_TOPIC",
    "REASON_UNASKED",
    "REFUSAL_REASONS",
    "ROLLCALL_WAIT",
    "SHOWN",
    "SILENT_AFTER",
    "ConnectionView",
    "EngineRows",
    "EngineView",
    "FleetTotals",
    "GapCounter",
    "HeardBatch",
    "HeardLine",
    "HeldTask",
    "LogFollower",
    "ReaderModel",
    "Refusals",
    "RunLogs",
    "RunView",
    "Seen",
    "SnapshotAsker",
    "SourceGaps",
    "TaskLogCounts",
    "TelemetrySwitch",
    "TaskView",
    "ahead",
    "answer_part_refusal",
    "answer_stamped_ahead",
    "counted_summary",
    "cut_message",
    "ended_cleanly",
    "fleet_totals",
    "held_tasks",
    "inert",
    "keep_switching",
    "line_matches",
    "next_mode",
    "parse_age",
    "parse_timestamp",
    "refused_by_source",
    "silence_line",
    "silent_engines",
    "snapshot_events",
    "subscribe_statuses",
    "subscribe_summaries",
    "truncate",
]

# Where each name is defined: a name is imported from its module when first used (PEP 562),
# so that whoever needs one name does not pay for all of them (a command's start).
_HOMES = {
    "parse_age": "._ages",
    "MAX_ANSWER_TASKS": "._answers",
    "MAX_SNAPSHOT_PARTS": "._answers",
    "answer_part_refusal": "._answers",
    "answer_stamped_ahead": "._answers",
    "snapshot_events": "._answers",
    "SnapshotAsker": "._asker",
    "KEPT": "._bounded_text",
    "MARK": "._bounded_text",
    "truncate": "._bounded_text",
    "MAX_MORE_LIVE": "._fleet",
    "MAX_PLACES": "._fleet",
    "FleetTotals": "._fleet",
    "counted_summary": "._fleet",
    "fleet_totals": "._fleet",
    "DEFAULT_FLEET_THRESHOLD": "._defaults",
    "FLEET_CHECK": "._fleet_switch",
    "LEAVE_BELOW": "._fleet_switch",
    "TelemetrySwitch": "._fleet_switch",
    "keep_switching": "._fleet_switch",
    "next_mode": "._fleet_switch",
    "MAX_DIGESTS": "._gaps",
    "MAX_SEQ_JUMP": "._gaps",
    "GapCounter": "._gaps",
    "Seen": "._gaps",
    "SourceGaps": "._gaps",
    "HeldTask": "._held",
    "held_tasks": "._held",
    "SHOWN": "._inert",
    "inert": "._inert",
    "DEFAULT_KEEP_BYTES": "._logs",
    "DEFAULT_KEEP_LINES": "._logs",
    "MAX_LOG_RUNS": "._logs",
    "MAX_LOG_TASKS": "._logs",
    "HeardBatch": "._logs",
    "HeardLine": "._logs",
    "LogFollower": "._logs",
    "RunLogs": "._logs",
    "TaskLogCounts": "._logs",
    "cut_message": "._logs",
    "line_matches": "._logs",
    "DEFAULT_KEEP_FOR": "._defaults",
    "DEFAULT_KEEP_RUNS": "._defaults",
    "ReaderModel": "._model",
    "ENDED_FOLD_AFTER": "._presence",
    "EngineRows": "._presence",
    "ended_cleanly": "._presence",
    "MAX_CLOCK_SKEW": "._refusals",
    "REASON_BEYOND": "._refusals",
    "REASON_CONFLICT": "._refusals",
    "REASON_FOREIGN": "._refusals",
    "REASON_FUTURE": "._refusals",
    "REASON_INCONSISTENT": "._refusals",
    "REASON_MISMATCH": "._refusals",
    "REASON_NOT_ITS_PLACE": "._refusals",
    "REASON_NOT_ITS_TOPIC": "._refusals",
    "REASON_UNASKED": "._refusals",
    "REFUSAL_REASONS": "._refusals",
    "Refusals": "._refusals",
    "ahead": "._refusals",
    "refused_by_source": "._refused",
    "FLAP_WINDOW": "._silence",
    "FLAPS": "._silence",
    "SILENT_AFTER": "._silence",
    "silence_line": "._silence",
    "silent_engines": "._silence",
    "ROLLCALL_WAIT": "._subscriptions",
    "subscribe_statuses": "._subscriptions",
    "subscribe_summaries": "._subscriptions",
    "parse_timestamp": "._timestamps",
    "FINISHED_STATES": "._views",
    "LAST_TIMESTAMP": "._views",
    "ConnectionView": "._views",
    "EngineView": "._views",
    "RunView": "._views",
    "TaskView": "._views",
}


def __getattr__(name: str) -> Any:
    """Each public name, from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __package__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, those not imported yet included."""
    return sorted({*globals(), *__all__})
