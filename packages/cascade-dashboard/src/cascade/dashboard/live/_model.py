"""The dashboard's one adapter onto the reader model
(:class:`~cascade.reader.ReaderModel`).

Everything the pages see is read from the model here, and only here, so that the
dashboard follows the model wherever it goes. What the model does not keep yet is
kept beside it, bounded: each task's timeline (a segment per state it was in), when
and when a run was first and last heard of, and the version each run, task, engine and
constraint last changed at (``_versions``: what a page's stream sends is what changed),
and the fleet as the engines' summaries tell it (``_fleet_index``), read instead of the runs
in fleet mode.

The Decisions list is rendered here too (:class:`HeldIndex`): the live runs' tasks
held for a decision as the reader model reads them
(:func:`~cascade.reader.held_tasks`), the longest held first, bounded (a fleet may
hold many: the first :data:`MAX_HELD_SHOWN`, and how many there are). Shared by
``/api/state`` and the streams' ``held`` part. The list is read once per version of the
model, then filtered by what the asker may see and marked with what they may decide.
"""

from __future__ import annotations

import fnmatch
import heapq
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from cascade.interfaces import DEFAULT_PREFIX, Message, decode_level
from cascade.reader import (
    ENDED_FOLD_AFTER,
    EngineView,
    HeldTask,
    LogFollower,
    ReaderModel,
    RunView,
    ended_cleanly,
    held_tasks,
    silence_line,
    silent_engines,
)

from ._fleet_index import FLEET, FleetIndex, FleetRun
from ._log_backfill import seed_run
from ._problems import PROBLEMS_SHOWN, problems_header
from ._shapes import constraint_dict, engine_dict, fleet_run_dict, task_detail
from ._timelines import MAX_SEGMENTS_PER_RUN, Timeline
from ._versions import EntityVersions, TaskLog

if TYPE_CHECKING:
    from cascade.control.access import Among
    from cascade.history import LogCount, RecordedLogLine, RecorderNote

RECORDER_NOTE_FRESH = 30.0
"""Seconds a recorder's note that it is behind is believed: a recorder notes every few
seconds (``cascade.history.NOTE_EVERY``), so an older one is of a recorder that stopped."""

__all__ = [
    "MAX_HELD_MATCHED",
    "RECORDER_NOTE_FRESH",
    "MAX_HELD_SHOWN",
    "DashboardModel",
    "Decidable",
    "HeldFilter",
    "HeldIndex",
    "held_entry",
]

#: Task log lines kept per open run (the last ones), and bytes of their messages.
LOG_LINES_PER_RUN = 2_000
LOG_BYTES_PER_RUN = 2 * 1024 * 1024
#: Runs listed in a snapshot: the running ones first, then the last heard of.
MAX_RUNS_SHOWN = 100
#: Engines listed in a snapshot (the first by source; ``engines_total`` says how many in all).
MAX_ENGINES_SHOWN = 100

MAX_HELD_SHOWN = 50
# the most held tasks a filter's matches list (Decisions' bulk decision: at most these at once)
MAX_HELD_MATCHED = 500
"""The held tasks the list shows at most (``total`` counts them all)."""

Decidable = Callable[[str, str, str], bool]
"""Whether the asker may decide on a task of (org, project, task name)."""


class DashboardModel:
    """A :class:`ReaderModel` fed by the dashboard's one subscription, read as JSON-ready dicts.

    ``version`` rises with every message, so pages can tell whether anything changed;
    :attr:`versions` and each run's :meth:`task_log` say what changed at which version.
    ``epoch`` tells this model's versions from another's (a restarted dashboard's).
    """

    def __init__(
        self,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
        *,
        max_segments_per_run: int = MAX_SEGMENTS_PER_RUN,
    ) -> None:
        self.state = ReaderModel(prefix=prefix, clock=clock)
        # imported here: the plain CLI imports this module, and prometheus-client comes with
        # the dashboard's extra only
        from cascade.metrics import CascadeMetrics

        self.logs = LogFollower(
            prefix=prefix,
            keep_lines=LOG_LINES_PER_RUN,
            keep_bytes=LOG_BYTES_PER_RUN,
            clock=clock,
            owner=self._run_source,
        )
        """The open runs' task logs (only theirs are subscribed to: ``FleetMode``), their last
        lines kept, from the source the model takes each run from; the metrics fold the
        batches into it."""
        self.metrics = CascadeMetrics(self.state, logs=self.logs)
        """The Prometheus metrics of what the model sees (``/metrics``); it folds the messages."""
        self.clock = clock
        self.version = 0
        self.epoch = secrets.token_hex(4)
        """Random per model: a version is only comparable with versions of the same epoch."""
        self.versions = EntityVersions()
        """The versions engines and constraints last changed at, and the lists' order."""
        self.max_segments_per_run = max_segments_per_run
        self.fleet = FleetIndex()
        """The engines' summaries added up and the runs they list; the mode read from them."""
        self.held = HeldIndex(self)
        """The live runs' tasks held for a decision (the Decisions list)."""
        self._timelines: dict[str, Timeline] = {}
        self._pruned = clock()
        self._silent: tuple[tuple[str, bool], ...] = ()
        self._silent_checked = float("-inf")
        self.recorders: list[dict[str, Any]] = []
        """The recorders that said in the history they do not keep up (:meth:`note_recorders`),
        as the header shows them."""
        # The few engines a fleet's header and engines' list must look at, so that neither
        # walks every engine at every request: those whose status said offline (only they
        # can have ended cleanly), and those that had a will or a silence noted (only they
        # can be silent). Noted as their messages come, dropped once no longer so.
        self._offline: set[str] = set()
        self._suspects: set[str] = set()
        # Runs the model changed without a message of theirs (lost with their engine, carried
        # on, back): recorded once the message that changed them is counted.
        self._restated: dict[str, RunView] = {}
        self.state.run_watchers.append(self._run_restated)
        self._lost: dict[str, dict[str, bool]] = {}
        """By engine, the runs lost with it this model holds: whether each was carried on."""

    def _run_source(self, run_id: str) -> str | None:
        """The source the model takes ``run_id`` from (``None``: not held)."""
        owner = self.state.run_owner(run_id)
        return None if owner is None else owner[0]

    @property
    def prefix(self) -> str:
        """The topic prefix the model reads."""
        return self.state.prefix

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.state.prefix = self.logs.prefix = value

    @property
    def kept_timelines(self) -> frozenset[str]:
        """The ids of the runs whose timelines are kept."""
        return frozenset(self._timelines)

    def apply(self, message: Message) -> None:
        """Fold one received message into the model (and its metrics), and the run's timeline."""
        self.metrics.apply(message)
        self.version += 1
        self._prune()
        kind = message.topic.removeprefix(self.prefix + "/").partition("/")[0]
        payload = message.payload
        if kind == "summary":
            self._summarised(
                {decode_level(message.topic.rsplit("/", 1)[-1]), payload.get("source")}
            )
        elif kind == "telemetry":
            run_id = payload.get("run_id")
            run = self.state.runs.get(run_id) if isinstance(run_id, str) else None
            if run is not None:
                self._record(run, payload.get("body"))
            source = payload.get("source")
            engine = self.state.engines.get(source) if isinstance(source, str) else None
            if engine is not None:
                self.versions.engine_heard(engine.source, engine.last_seen, self.version)
                if engine.status is not None and len(engine.live_seen) != self.fleet.live_seen(
                    engine.source
                ):
                    # a run of an engine counted by its events started or ended: the live
                    # runs (what fleet mode is decided on) and its row changed
                    self.fleet.engine(engine.source, engine, self.version)
                    self.versions.engine_summarised(engine.source, self.version)
        elif kind == "status":
            sources = {decode_level(message.topic.rsplit("/", 1)[-1]), payload.get("source")}
            for source in sources:
                engine = self.state.engines.get(source) if isinstance(source, str) else None
                if engine is not None:
                    self._note_engine(engine)
                    self.versions.engine_changed(engine.source, engine.last_seen, self.version)
                    self.fleet.engine(engine.source, engine, self.version)  # online or not
            if not payload:  # cleared: the engine is gone
                self.versions.forget_engines(self.state.engines, self.version)
                self.fleet.forget_gone(self.state.engines, self.version)
        elif kind == "constraints":
            if message.topic in self.state.constraints:
                self.versions.constraints[message.topic] = self.version
            else:
                self.versions.constraints.pop(message.topic, None)
        if self._restated:
            restated, self._restated = self._restated, {}
            for run in restated.values():
                self._death_noted(run)

    def _run_restated(self, run: RunView) -> None:
        """The reader model's :attr:`~cascade.reader.ReaderModel.run_watchers`: ``run`` is
        lost, carried on, or back, by a message not of its own."""
        self._restated[run.run_id] = run

    def _death_noted(self, run: RunView) -> None:
        """``run`` was lost with its engine, carried on, or is back: its row, its page and
        its engine's row change (the Decisions list follows the model's version)."""
        if run.run_id not in self.state.runs:
            return
        self._record(run, None)
        lost = self._lost.setdefault(run.source, {})
        if run.lost:
            lost[run.run_id] = run.carried_on_as is not None
        else:
            lost.pop(run.run_id, None)
        if not lost:
            del self._lost[run.source]
        if run.source in self.state.engines:
            self.versions.engine_summarised(run.source, self.version)

    def lost_with(self, source: str) -> tuple[int, int]:
        """The runs this model holds that were lost with the engine ``source``, and how many
        of them another server carried on."""
        lost = self._lost.get(source, {})
        return len(lost), sum(lost.values())

    def _summarised(self, sources: set[Any]) -> None:
        """An engine's summary came: the engine changed if its summary did (it costs the
        pages that engine's row and the runs it lists, never a snapshot)."""
        for source in sources:
            engine = self.state.engines.get(source) if isinstance(source, str) else None
            if engine is not None:
                self._note_engine(engine)
            if engine is not None and self.fleet.engine(engine.source, engine, self.version):
                self.versions.engine_summarised(engine.source, self.version)

    def _note_engine(self, engine: EngineView) -> None:
        """Note ``engine`` among the offline ones, or those that may be silent, if it is."""
        if engine.status is not None and engine.status.status == "offline":
            self._offline.add(engine.source)
        if engine.wills or engine.silent_since is not None:
            self._suspects.add(engine.source)

    def folded_engines(self, now: float | None = None) -> set[str]:
        """The engines that ended cleanly :data:`ENDED_FOLD_AFTER` seconds before ``now`` (the
        model's clock) or earlier: folded into a count, left out of the engines' lists but
        ``ended``'s and ``offline``'s. Looks at the offline engines only."""
        engines, offline = self.state.engines, self._offline
        before = (self.state.clock() if now is None else now) - ENDED_FOLD_AFTER
        folded = set()
        for source in list(offline):
            engine = engines.get(source)
            if engine is None or engine.status is None or engine.status.status != "offline":
                offline.discard(source)
            elif ended_cleanly(engine) and (engine.last_seen is None or engine.last_seen <= before):
                folded.add(source)
        return folded

    def silent_engines(self) -> list[EngineView]:
        """:meth:`~cascade.reader.ReaderModel.silent_engines`, looking only at the engines
        that had a will or a silence noted."""
        engines, suspects = self.state.engines, self._suspects
        looked = []
        for source in list(suspects):
            engine = engines.get(source)
            if engine is None or not (engine.wills or engine.silent_since is not None):
                suspects.discard(source)
            else:
                looked.append(engine)
        return silent_engines(looked, self.state.clock())

    def set_mode(self, mode: str) -> None:
        """Read the fleet from its engines' summaries (:data:`~._fleet_index.FLEET`) or from
        every run's events: the pages' runs list changes source."""
        if mode != self.fleet.mode:
            self.fleet.mode = mode
            self.version += 1
            self.versions.runs_order = self.version

    def forget_run(self, run_id: str) -> None:
        """Drop the run ``run_id`` and what is kept of it: no page follows it any more, and
        its events are no longer read (fleet mode)."""
        if self.state.forget_run(run_id):
            self.version += 1
            self._forget_gone_runs()

    def forget_logs(self, run_id: str) -> None:
        """Drop the lines kept of ``run_id``'s logs: no page has it open any more."""
        if self.logs.forget_run(run_id):
            self.version += 1

    def seed_logs(
        self,
        run_id: str,
        recorded: Sequence[RecordedLogLine],
        counts: Mapping[str, LogCount] | None = None,
    ) -> bool:
        """Merge the lines a history ``recorded`` of ``run_id`` (and its tasks' ``counts``)
        with those heard (the pages that show them start over); whether any was new."""
        if not seed_run(self.logs, run_id, recorded, counts):
            return False
        self.version += 1
        return True

    def _record(self, run: RunView, body: Any) -> None:
        now = self.clock()
        version = self.version
        line = self._timelines.get(run.run_id)
        if line is None:
            # a run first heard of as lost (from its carry-on) was not seen before its death
            seen = now if run.lost_at is None else min(now, run.lost_at)
            line = self._timelines[run.run_id] = Timeline(first_seen=seen, last_seen=now)
            line.log = TaskLog(born=version, changed=version)
            line.status = ""  # recorded below, with its key
            self._forget_gone_runs()
        line.last_seen = now
        line.log.changed = version
        if run.status != line.status:
            line.status = run.status
            line.key = (0 if run.status == "Running" else 1, -line.first_seen, run.run_id)
            self.versions.runs_order = version
        if run.origin is not line.origin:  # it names its line's first run: the lists fold it
            line.origin = run.origin
            self.versions.runs_order = version
        if run.status != "Running" and line.ended is None:
            line.ended = now if run.lost_at is None else run.lost_at  # its clock stops there
        elif run.status == "Running":
            line.ended = None
        self._note_compaction(run, line)
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if isinstance(body, dict) and not isinstance(task_id, str):
            self._touch_listed(run, line, body)
        task = run.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            return
        line.log.touch(task.task_id, version)
        line.record(task, self.max_segments_per_run)

    def _touch_listed(self, run: RunView, line: Timeline, body: dict[str, Any]) -> None:
        """The tasks a heartbeat (blocked ones, with what holds them) or an engine's snapshot
        of the run lists changed."""
        listed = body.get("blocked_tasks") or body.get("tasks")
        if isinstance(listed, list):
            for item in listed:
                task_id = item.get("task_id") if isinstance(item, dict) else None
                if isinstance(task_id, str) and task_id in run.tasks:
                    line.log.touch(task_id, self.version)

    def _note_compaction(self, run: RunView, line: Timeline) -> None:
        """A compacted run keeps only the tasks its timelines drew (and a few failures): if it
        had more, some left its detail, and the pages that follow it start over."""
        if run.compacted and not line.compacted:
            line.compacted = True
            if line.truncated:
                line.log.reset = self.version

    def _forget_gone_runs(self) -> None:
        """Drop the timelines of runs the model no longer holds (its bounds are ours)."""
        if len(self._timelines) > len(self.state.runs):
            for run_id in [r for r in self._timelines if r not in self.state.runs]:
                del self._timelines[run_id]
            for source, lost in list(self._lost.items()):
                for run_id in [r for r in lost if r not in self.state.runs]:
                    del lost[run_id]
                if not lost:
                    del self._lost[source]
            self.versions.runs_order = self.version

    def _prune(self) -> None:
        """Apply the model's bounds on finished runs, at most once a second."""
        now = self.clock()
        if now - self._pruned >= 1.0:
            self._pruned = now
            self.state.prune(now)
            self._forget_gone_runs()
            for run_id, line in self._timelines.items():
                run = self.state.runs.get(run_id)
                if run is not None:
                    self._note_compaction(run, line)
            if len(self.versions.engines) > len(self.state.engines):
                self.versions.forget_engines(self.state.engines, self.version)
                self.fleet.forget_gone(self.state.engines, self.version)

    # -- reading -----------------------------------------------------------------------

    def snapshot(self, max_runs: int = MAX_RUNS_SHOWN) -> dict[str, Any]:
        """Engines (the first :data:`MAX_ENGINES_SHOWN` by source), runs (summaries, at most
        ``max_runs``) and constraints in force, as dicts.

        ``engines_total`` and ``runs_total`` say how many there are, listed or not.
        """
        state = self.state
        engines = heapq.nsmallest(MAX_ENGINES_SHOWN, state.engines.values(), key=_source)
        if self.fleet.mode == FLEET:  # the summaries' runs
            listed: list[dict[str, Any]] = [fleet_run_dict(r) for r in self.fleet.items[:max_runs]]
            total = len(self.fleet.runs)
        else:
            runs = list(state.runs.values())
            if len(runs) > max_runs:
                shown = {id(run) for run in heapq.nlargest(max_runs, runs, key=self._recency)}
                runs = [run for run in runs if id(run) in shown]
            listed, total = [self.run_summary(run) for run in runs], len(state.runs)
        return {
            "version": self.version,
            "now": self.clock(),
            "engines": [engine_dict(e, lost=self.lost_with(e.source)) for e in engines],
            "engines_total": len(state.engines),
            "runs": listed,
            "runs_total": total,
            "constraints": [constraint_dict(t, c) for t, c in state.active_constraints()],
            **self.header(),
        }

    def header(self) -> dict[str, Any]:
        """What the model ignored, missed and refused (``rejected``, ``oversized``; ``missed``,
        ``refused`` and ``conflicts``: the worst few sources of each and their totals,
        :func:`~._problems.problems_header`), as a snapshot says it, the ``mode`` (``events``
        or ``fleet``) and the ``fleet``'s totals from its engines' summaries."""
        state = self.state
        silent = self.silent_engines()
        return {
            "mode": self.fleet.mode,
            "fleet": self.fleet.totals(),
            "rejected": state.rejected,
            "oversized": state.oversized,
            **problems_header(state),
            # engines that ended cleanly a while ago: left out of the engines' list but
            # `engine_status=ended`'s (and `offline`'s)
            "ended_cleanly": len(self.folded_engines()),
            # engines whose telemetry does not reach this dashboard, and the likely cause: the
            # first few by source (a page's header), and how many in all
            "silent": [
                {"source": engine.source, "line": silence_line(engine)}
                for engine in silent[:PROBLEMS_SHOWN]
            ],
            "silent_total": len(silent),
            # recorders that do not keep up with the broker, as they noted it in the history
            # (while it happens: the runs' missing counts say it only afterwards)
            "recorders": self.recorders,
        }

    def note_recorders(self, notes: list[RecorderNote], now: float) -> bool:
        """Take what the recorders last noted in the history (:meth:`History.recorders
        <cascade.history.History.recorders>`): those that said they are behind, within
        :data:`RECORDER_NOTE_FRESH` seconds, are the header's ``recorders``. Whether that
        changed (then the pages' header changes)."""
        behind = [
            note.to_json()
            for note in notes[:PROBLEMS_SHOWN]
            if note.behind and now - note.noted_at <= RECORDER_NOTE_FRESH
        ]
        if behind == self.recorders:
            return False
        self.recorders = behind
        self.version += 1
        return True

    def check_silent(self) -> bool:
        """Whether the engines whose telemetry does not arrive changed since the last call
        (they change with time as well as with messages): the pages' header then changes.
        Looks at most once a second, whatever the number of streams asking."""
        now = self.clock()
        if now - self._silent_checked < 1.0:
            return False
        self._silent_checked = now
        silent = tuple(
            (engine.source, engine.silent_since is None) for engine in self.silent_engines()
        )
        if silent == self._silent:
            return False
        self._silent = silent
        self.version += 1
        return True

    def _recency(self, run: RunView) -> tuple[bool, float]:
        line = self._timelines.get(run.run_id)
        return run.status == "Running", line.last_seen if line else 0.0

    def run_summary(self, run: RunView | FleetRun) -> dict[str, Any]:
        """One run as the runs' list shows it (``/api/state``'s ``runs``)."""
        if isinstance(run, FleetRun):
            return fleet_run_dict(run)
        line = self._timelines.get(run.run_id)
        counts = run.counts()
        summary: dict[str, Any] = {
            "run_id": run.run_id,
            "org_id": run.org_id,
            "project_id": run.project_id,
            "source": run.source,
            "status": run.status,
            "error": run.error,
            "trace_id": run.trace_id,  # the run's OpenTelemetry trace id, null if not traced
            # its name and where it came from, as its start or its engine's answer said
            "name": run.name,
            "origin": None if run.origin is None else msgspec.to_builtins(run.origin),
            "total": run.total_tasks,
            "finished": run.finished_tasks,
            "progress": run.progress,  # never goes backwards; None while the total is unknown
            "counts": dict(counts),
            # the decisions people took on its held tasks, as the history's runs say them
            "decisions": [decided.to_json() for decided in run.decisions()],
            "decisions_others": run.decisions_others,
            # what this view lacks of the run until its engine answers (None: nothing known)
            "partial": self.state.partial(run),
            "started": line.first_seen if line else None,
            "ended": line.ended if line else None,
        }
        if run.lost:  # lost with its engine (its status said offline before the run ended):
            # when this view heard it, and the run another server carried it on as, and that
            # server (left out of the others: a first answer of many runs stays small)
            summary["lost_at"] = run.lost_at
            summary["carried_on_as"] = run.carried_on_as
            summary["carried_on_by"] = run.carried_on_by
        return summary

    def run_detail(self, run_id: str) -> dict[str, Any] | None:
        """One run with each task's timeline and the failures, or ``None`` if unknown."""
        run = self.state.runs.get(run_id)
        if run is None:
            listed = self.fleet.runs.get(run_id)  # opened, its events not read yet
            if listed is None:
                return None
            return {**fleet_run_dict(listed), "tasks": [], "failures": [], "truncated": 0}
        line = self._timelines.get(run_id)
        if line is None:
            tasks = [task_detail(task, ()) for task in run.tasks.values()]
        else:
            tasks = [
                task_detail(task, line.tasks.get(task.task_id, ()))
                for task in {**line.views, **run.tasks}.values()
            ]
        failures = [
            {"task_id": t.task_id, "name": t.name, "error": t.error}
            for t in run.tasks.values()
            if t.state == "FAILED"
        ]
        return {
            **self.run_summary(run),
            "tasks": tasks,
            "failures": failures,
            "truncated": line.truncated if line else 0,
        }

    # -- reading what changed (the pages' streams, ``_deltas``) ----------------------------

    def run_key(self, run: RunView) -> tuple[int, float, str]:
        """Where ``run`` stands in the pages' runs list: the running ones first, then the
        newest first (by when this dashboard first heard of it), then by id."""
        line = self._timelines.get(run.run_id)
        return (
            line.key if line is not None else (0 if run.status == "Running" else 1, 0.0, run.run_id)
        )

    def run_keys(self) -> list[tuple[int, float, str]]:
        """The :meth:`run_key` of every run, and maybe of a few the model just forgot."""
        return [line.key for line in self._timelines.values()]

    def task_log(self, run_id: str) -> TaskLog | None:
        """What changed of the run ``run_id`` when, ``None`` if the model does not hold it."""
        line = self._timelines.get(run_id)
        return line.log if line is not None and run_id in self.state.runs else None

    def open_run(self, run_id: str) -> RunView | FleetRun | None:
        """The run a page opened: as its events tell it, else as a summary lists it."""
        return self.state.runs.get(run_id) or self.fleet.runs.get(run_id)

    def run_version(self, run: RunView | FleetRun) -> int:
        """The version ``run``'s summary last changed at (its engine's status is part of it)."""
        if isinstance(run, FleetRun):
            return run.version
        line = self._timelines.get(run.run_id)
        changed = line.log.changed if line is not None else 0
        return max(changed, self.versions.engine_status.get(run.source, 0))

    def run_json(self, run: RunView | FleetRun) -> bytes:
        """:meth:`run_summary` as JSON (or a summary's run, ``fleet_run_dict``), built once per
        change of the run."""
        if isinstance(run, FleetRun):
            if run.json is None:
                run.json = json.dumps(fleet_run_dict(run)).encode()
            return run.json
        line = self._timelines.get(run.run_id)
        if line is None:
            return json.dumps(self.run_summary(run)).encode()
        version = self.run_version(run)
        if line.log.summary is None or line.log.summary[0] != version:
            line.log.summary = (version, json.dumps(self.run_summary(run)).encode())
        return line.log.summary[1]

    def engine_json(self, engine: EngineView) -> bytes:
        """One engine as the engines' list shows it, as JSON, built once per change of it."""
        return self.versions.engine_json(
            engine.source,
            lambda: json.dumps(engine_dict(engine, lost=self.lost_with(engine.source))).encode(),
        )

    def detail_extras(self, run_id: str) -> dict[str, Any]:
        """What a run's detail adds to its summary besides its tasks: ``truncated``."""
        line = self._timelines.get(run_id)
        return {"truncated": line.truncated if line else 0}

    def task_ids(self, run_id: str) -> list[str]:
        """The ids of the tasks of the run's detail, in its order."""
        run = self.state.runs.get(run_id)
        if run is None:
            return []
        line = self._timelines.get(run_id)
        return list({**line.views, **run.tasks} if line else run.tasks)

    def task_json(self, run_id: str, task_id: str) -> bytes | None:
        """One task of the run's detail as JSON (as in :meth:`run_detail`), built once per
        change of it; ``None`` if the detail has no such task."""
        run = self.state.runs.get(run_id)
        line = self._timelines.get(run_id)
        if run is None or line is None:
            return None
        kept = line.log.json.get(task_id)
        if kept is None:
            task = run.tasks.get(task_id) or line.views.get(task_id)
            if task is None:
                return None
            detail = task_detail(task, line.tasks.get(task_id, ()))
            kept = line.log.json[task_id] = json.dumps(detail).encode()
        return kept


def _source(engine: EngineView) -> str:
    return engine.source


# -- the Decisions list -----------------------------------------------------------


def held_entry(held: HeldTask) -> dict[str, Any]:
    """One held task as the list shows it: its run, its id and name, the failed ``attempt``,
    its error, since when it is held, the hold's ``deadline`` and ``default``; a gate's
    ``awaits_approval`` and ``prompt``. Its traceback is in the run's detail (its task's
    ``traceback``)."""
    return {
        "run_id": held.run_id,
        "org_id": held.org_id,
        "project_id": held.project_id,
        "source": held.source,
        "task_id": held.task_id,
        "name": held.name,
        "attempt": held.attempt,
        "error": held.error,
        "since": held.since,
        "deadline": held.deadline,
        "default": held.default,
        "awaits_approval": held.awaits_approval,
        "prompt": held.prompt,
    }


class HeldFilter(msgspec.Struct, frozen=True):
    """Which held tasks a bulk decision is about, as `cascade retry --held` picks them: of the
    run ``run`` (its id or a prefix of it), whose name matches the glob ``task`` (or whose id
    is it), of ``project`` (``org/project``, or a project of any org), whose error holds
    ``error`` (any case). An empty filter picks every held task."""

    run: str | None = None
    task: str | None = None
    project: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, params: Mapping[str, str]) -> HeldFilter:
        """The filter an address's query gives (``run_id``, ``task``, ``project``, ``error``;
        empty ones ignored); a ValueError names one too long."""
        given: dict[str, str] = {}
        for name, key in (
            ("run", "run_id"),
            ("task", "task"),
            ("project", "project"),
            ("error", "error"),
        ):
            value = (params.get(key) or "").strip()
            if len(value) > 256:
                raise ValueError(f"{key} must be at most 256 characters")
            if value:
                given[name] = value
        return cls(**given)

    def __call__(self, held: HeldTask) -> bool:
        if self.run is not None and not held.run_id.startswith(self.run):
            return False
        if self.task is not None and not (
            held.task_id == self.task or fnmatch.fnmatchcase(held.name, self.task)
        ):
            return False
        if self.project is not None and self.project not in (
            held.project_id,
            f"{held.org_id}/{held.project_id}",
        ):
            return False
        return self.error is None or self.error.casefold() in (held.error or "").casefold()


class HeldIndex:
    """The held tasks of a model's live runs (:func:`~cascade.reader.held_tasks`),
    read again once its version moved."""

    def __init__(self, model: DashboardModel) -> None:
        self.model = model
        self._version = -1
        self._held: list[HeldTask] = []

    def all(self) -> list[HeldTask]:
        """Every held task of a live run, the longest held first."""
        model = self.model
        if model.version != self._version:
            self._version = model.version
            self._held = held_tasks(model.state)
        return self._held

    def listed(
        self,
        among: Among | None = None,
        decidable: Decidable | None = None,
        limit: int = MAX_HELD_SHOWN,
        picks: HeldFilter | None = None,
    ) -> dict[str, Any]:
        """``{"tasks": [...], "total": n}``: the first ``limit`` held tasks the asker may see
        (``among``: ``None``, all) that ``picks`` picks (``None``: all), each with ``decide``:
        whether they may decide on it (``decidable``; ``None``: nobody may)."""
        seen = [
            held
            for held in self.all()
            if (
                among is None
                or (held.org_id, None) in among
                or (held.org_id, held.project_id) in among
            )
            and (picks is None or picks(held))
        ]
        tasks = []
        for held in seen[:limit]:
            entry = held_entry(held)
            entry["decide"] = decidable is not None and decidable(
                held.org_id, held.project_id, held.name
            )
            tasks.append(entry)
        return {"tasks": tasks, "total": len(seen)}
