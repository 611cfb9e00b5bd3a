"""``CascadeMetrics``: a reader's view of the broker (a :class:`ReaderModel`) as Prometheus metrics.

Two halves. Counters and the duration histogram are fed as messages arrive
(:meth:`CascadeMetrics.apply` folds each into the state and counts what
changed: a task that reached a final state, a run that ended), so a copy
resent after a lost connection, which the state ignores, is not counted
twice. Everything that is "now" (tasks running, engines online, constraints
in force, events missed) is read from the state at scrape time by a custom
collector. Every metric lives in the exporter's own registry, never the
process-wide one. See docs/metrics.md for the list.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cascade.interfaces import Heartbeat, Message
from cascade.reader import (
    FINISHED_STATES,
    REFUSAL_REASONS,
    LogFollower,
    ReaderModel,
    RunView,
    TaskView,
)

from ._held import held_metrics
from ._labels import DEFAULT_MAX_LABEL_VALUES, OTHER, LabelCap, label_value

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "CascadeMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of :meth:`CascadeMetrics.render` (Prometheus's text format)."""

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Upper bounds (seconds) of ``cascade_task_duration_seconds``: workflow tasks, not requests."""

CONSTRAINT_TYPES = ("pause", "concurrency", "rate_limit")
_PRUNE_EVERY = 1.0  # seconds between two prunings of the state, at most


class CascadeMetrics:
    """The metrics of one reader: feed it every message with :meth:`apply`, scrape
    :meth:`render` (or :attr:`registry`).

    ``state`` is the reader's :class:`ReaderModel` (the dashboard's model's, or
    one of its own); :meth:`apply` folds messages into it, so the state and the
    counters never disagree. ``max_label_values`` caps the distinct values of
    the ``task``, ``project``, ``org`` and ``source`` labels (:class:`LabelCap`).
    ``count_gaps=False`` leaves ``cascade_missed_events`` out (a recorder that
    shares its stream sees a part of each run: its holes mean nothing).

    Task log batches (``{prefix}/logs/...``) are folded into :attr:`logs` (a
    :class:`LogFollower`: the dashboard passes its own, which keeps the lines; by default
    none are kept), and the lines received and dropped are counted per source, once per
    batch the follower takes (a copy, or a batch refused, counts nothing).
    """

    def __init__(
        self,
        state: ReaderModel,
        *,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
        count_gaps: bool = True,
        logs: LogFollower | None = None,
    ) -> None:
        self.state = state
        self.logs = logs or LogFollower(prefix=state.prefix, keep_lines=0, clock=state.clock)
        """Where task log batches are folded (their lines kept, or not)."""
        self.count_gaps = count_gaps
        self.tasks = LabelCap("task", max_label_values)
        self.projects = LabelCap("project", max_label_values)
        self.orgs = LabelCap("org", max_label_values)
        self.sources = LabelCap("source", max_label_values)
        self.registry = CollectorRegistry(auto_describe=False)
        """The exporter's own registry (never prometheus_client's global one)."""
        registry = self.registry
        self._runs = Counter(
            "cascade_runs",
            "Runs that ended, by project and final state (Succeeded, Failed, Cancelled, and Lost: "
            "their engine went offline before their end).",
            ["project", "state"],
            registry=registry,
        )
        self._tasks = Counter(
            "cascade_tasks",
            "Tasks that reached a final state (COMPLETED, FAILED, CANCELLED, SKIPPED), by task.",
            ["task", "state"],
            registry=registry,
        )
        self._retries = Counter(
            "cascade_task_retries",
            "Task attempts that failed and were retried, by task name.",
            ["task"],
            registry=registry,
        )
        self._durations = Histogram(
            "cascade_task_duration_seconds",
            "How long a task's last attempt ran, for tasks that completed or failed.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._log_lines = Counter(
            "cascade_log_lines",
            "Task log lines received, by the engine (source) that sent them.",
            ["source"],
            registry=registry,
        )
        self._log_dropped = Counter(
            "cascade_log_lines_dropped",
            "Task log lines an engine said it dropped, by source and reason (rate, budget, queue).",
            ["source", "reason"],
            registry=registry,
        )
        self._dropped: dict[str, tuple[int | None, int]] = {}  # source: (session, reported)
        # (task label, state): its counter's child and its histogram's (bounded by the caps)
        self._task_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._pruned = 0.0
        self._lost: set[str] = set()  # the runs counted Lost, kept while the state has them
        registry.register(_StateCollector(self))
        state.run_watchers.append(self._run_changed)

    # -- fed as messages arrive --------------------------------------------------------------

    def apply(self, message: Message) -> None:
        """Fold ``message`` into the state, and count what it changed."""
        state = self.state
        payload = message.payload
        is_telemetry = message.topic.startswith(state.prefix + "/telemetry/")
        if not is_telemetry and message.topic.startswith(state.prefix + "/logs/"):
            self._logged(message)
            return
        run_id = payload.get("run_id") if is_telemetry else None
        if not isinstance(run_id, str):
            state.apply(message)
            self._prune()
            return
        task_ids = _task_ids(payload.get("body"))
        run = state.runs.get(run_id)
        ended = run is not None and run.finished
        before = [_task_key(run, task_id) for task_id in task_ids]
        state.apply(message)
        run = run if run is not None else state.runs.get(run_id)
        if run is None:
            return
        for task_id, key in zip(task_ids, before, strict=True):  # late ones of an ended run too
            task = run.tasks.get(task_id)
            if task is not None and (task.state, task.ts) != key:
                self._entered(task)
        if not ended and run.finished and run.run_id not in self._lost:  # each run ends once
            self._runs.labels(self.projects(run.project_id), run.status).inc()
        if isinstance(run.heartbeat, Heartbeat):
            self._reported_drops(run)
        self._prune()

    def _run_changed(self, run: RunView) -> None:
        """A run lost with its engine ends as ``Lost``: counted once, whatever is said of it
        after (where it was carried on). A stub of a run lost before this reader heard of it
        (known from its carry-on alone) ended before this reader counted anything: left out."""
        if run.lost and run.run_id not in self._lost and run.last_heard:
            self._lost.add(run.run_id)
            self._runs.labels(self.projects(run.project_id), "Lost").inc()

    def _logged(self, message: Message) -> None:
        """Fold a log batch into :attr:`logs`; count its lines and those its engine dropped."""
        self.logs.prefix = self.state.prefix
        heard = self.logs.apply(message)
        if heard is None:
            return
        source = self.sources(heard.source)
        if heard.lines:
            self._log_lines.labels(source).inc(len(heard.lines))
        for dropped in heard.dropped:
            self._log_dropped.labels(source, dropped.reason).inc(dropped.lines)

    def _entered(self, task: TaskView) -> None:
        """Count a task that entered ``task.state`` (once per state the state accepted)."""
        if task.state in FINISHED_STATES:
            name = self.tasks(task.name)
            key = (name, task.state)
            children = self._task_children.get(key)
            if children is None:  # labels() costs more than the count: each child made once
                timed = task.state in ("COMPLETED", "FAILED")
                children = self._task_children[key] = (
                    self._tasks.labels(name, task.state),
                    self._durations.labels(name) if timed else None,
                )
            counted, durations = children
            counted.inc()
            if durations is not None:
                durations.observe(task.duration_ms / 1000.0)
        elif task.state == "RETRYING":
            self._retries.labels(self.tasks(task.name)).inc()

    def _reported_drops(self, run: RunView) -> None:
        """Keep the engine's own drop count (``dropped_telemetry``, per connector: cumulative
        over its runs) per source: the largest reported in its session."""
        assert run.heartbeat is not None
        reported = run.heartbeat.dropped_telemetry
        if not self.sources.admits(run.source):
            return  # folded sources' drops are left out (their count is in the folded metric)
        engine = self.state.engines.get(run.source)
        session = engine.status.session if engine is not None and engine.status else None
        known = self._dropped.get(run.source)
        if known is None or known[0] != session or reported > known[1]:
            self._dropped[run.source] = (session, reported)

    def _prune(self) -> None:
        """The state's bounds on finished and silent runs, at most once a second."""
        now = self.state.clock()
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            self.state.prune(now)
            self._lost.intersection_update(self.state.runs)

    # -- read at scrape time --------------------------------------------------------------

    def render(self) -> bytes:
        """The metrics in Prometheus's text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def collect_state(self) -> Iterator[Metric]:
        """The metrics read from the state now (what :meth:`render` adds to the counters)."""
        state = self.state
        now = state.clock()
        running = Tally[str]()
        runs_running = 0
        for run in state.runs.values():
            if not run.finished:
                runs_running += 1
                running.update(run.counts())
        yield _gauge("cascade_runs_running", "Runs started and not ended.", runs_running)
        yield _gauge(
            "cascade_tasks_running",
            "Tasks running now (retries included).",
            running["RUNNING"] + running["RETRYING"],
        )
        yield _gauge(
            "cascade_tasks_blocked",
            "Tasks held back now by a pause, a concurrency or a rate limit.",
            running["BLOCKED"],
        )
        yield from held_metrics(state, now, self.orgs, self.projects)
        yield from self._engines()
        yield from self._constraints(now)
        if self.count_gaps:
            yield self._missed()
        yield self._refused()
        dropped = CounterMetricFamily(
            "cascade_telemetry_dropped",
            "Telemetry each engine reported it dropped (its connector's buffer was full), "
            "as its latest heartbeat says.",
            labels=["source"],
        )
        for source, (_, count) in sorted(self._dropped.items()):
            dropped.add_metric([label_value(source)], count)
        yield dropped
        rejected = CounterMetricFamily(
            "cascade_messages_rejected",
            "Messages this reader ignored: not the protocol (invalid) or too large (oversized).",
            labels=["reason"],
        )
        rejected.add_metric(["invalid"], state.rejected)
        rejected.add_metric(["oversized"], state.oversized)
        yield rejected
        folded = CounterMetricFamily(
            "cascade_label_values_folded",
            f"Observations whose label value was beyond the cap, counted as {OTHER}.",
            labels=["label"],
        )
        for cap in (self.tasks, self.projects, self.sources):
            folded.add_metric([cap.name], cap.folded)
        yield folded

    def _engines(self) -> Iterator[Metric]:
        engines = list(self.state.engines.values())
        online = [e for e in engines if e.online]
        yield _gauge("cascade_engines_online", "Engines whose presence is online.", len(online))
        each = GaugeMetricFamily(
            "cascade_engine_online",
            "1 while the engine's presence is online, 0 once it is offline (its will, or its "
            "goodbye); engines beyond the source cap are left out.",
            labels=["source"],
        )
        for engine in sorted(engines, key=lambda e: e.source):
            if self.sources.admits(engine.source):
                each.add_metric([label_value(engine.source)], 1.0 if engine.online else 0.0)
        yield each

    def _constraints(self, now: float) -> Iterator[Metric]:
        active = self.state.active_constraints()
        by_type = Tally[str](constraint.type for _, constraint in active)
        in_force = GaugeMetricFamily(
            "cascade_constraints", "Constraints in force now, by type.", labels=["type"]
        )
        for kind in sorted({*CONSTRAINT_TYPES, *by_type}):
            in_force.add_metric([label_value(kind)], by_type[kind])
        yield in_force
        issued = [
            float(c.issued_at)
            for _, c in active
            if c.type == "pause" and isinstance(c.issued_at, (int, float))
        ]
        yield _gauge(
            "cascade_pause_age_seconds",
            "Seconds since the oldest pause in force was issued (0: none, or none says when).",
            max(0.0, now - min(issued)) if issued else 0.0,
        )

    def _missed(self) -> Metric:
        missed = GaugeMetricFamily(
            "cascade_missed_events",
            "Events this reader never received (holes in their runs' numbers), by source; "
            "falls when a late copy fills a hole.",
            labels=["source"],
        )
        other = 0
        by_source = dict.fromkeys(self.state.engines, 0)  # 0 for every engine known
        by_source.update(
            (source, gaps.missed) for source, gaps in self.state.gaps.by_source.items()
        )
        for source, count in sorted(by_source.items()):
            if self.sources.admits(source):
                missed.add_metric([label_value(source)], count)
            else:
                other += count
        if other:
            missed.add_metric([OTHER], other)
        return missed

    def _refused(self) -> Metric:
        refused = CounterMetricFamily(
            "cascade_refused_messages",
            "Messages this reader refused because no engine of their run can have sent them, "
            "by reason (the sources they claim: the views' footers; a forger chooses those, "
            "so they are no label).",
            labels=["reason"],
        )
        by_reason = dict.fromkeys(REFUSAL_REASONS, 0)
        for reasons in self.state.refusals.by_source.values():
            for reason, count in reasons.items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        for reason, count in sorted(by_reason.items()):
            refused.add_metric([reason], count)
        return refused


class _StateCollector(Collector):
    """The scrape-time half of :class:`CascadeMetrics`, registered in its registry."""

    def __init__(self, metrics: CascadeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.collect_state()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _task_ids(body: Any) -> list[str]:
    """The tasks a telemetry body may change: a task event's, or those a snapshot lists."""
    if not isinstance(body, dict):
        return []
    listed = body.get("tasks") if body.get("type") == "RunSnapshot" else [body]
    if not isinstance(listed, list):
        return []
    return [
        t["task_id"] for t in listed if isinstance(t, dict) and isinstance(t.get("task_id"), str)
    ]


def _task_key(run: RunView | None, task_id: Any) -> tuple[str, str] | None:
    """A task's (state, ts) before a message, to tell whether the message changed it."""
    if run is None or not isinstance(task_id, str):
        return None
    task = run.tasks.get(task_id)
    return None if task is None else (task.state, task.ts)
