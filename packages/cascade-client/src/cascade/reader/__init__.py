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

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

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
    from ._decision_counts import DecisionCount
    from ._defaults import DEFAULT_FLEET_THRESHOLD, DEFAULT_KEEP_FOR, DEFAULT_KEEP_RUNS
    from ._fleet import (
        MAX_MORE_LIVE,
        MAX_PLACES,
        CarriedOn,
        FleetTotals,
        carried_on,
        carries,
        counted_summary,
        fleet_totals,
        stranded_runs,
    )
    from ._fleet_switch import (
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
    from ._lost_runs import LostRun, lost_run
    from ._model import ReaderModel
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
        Place,
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

__all__, __getattr__, __dir__ = lazy_exports(__name__)
