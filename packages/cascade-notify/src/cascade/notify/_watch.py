"""``EventWatch``: the events worth a notification, told from what the reader model learns.

Every message goes through the model first (its defences hold: what no engine of a run can have
sent changes nothing, so it notifies nothing); the watch compares what the message changed:
a run that ended, a task newly held, an engine whose connection the broker says was lost.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from fnmatch import fnmatchcase

from cascade.interfaces import Message, decode_level
from cascade.reader import ReaderModel, RunView, TaskView, parse_timestamp

from ._notification import DEFAULT_EVENTS, EVENTS, Notification, last_line

__all__ = [
    "DEFAULT_LOST_AFTER",
    "DEFAULT_WARN_BEFORE",
    "MAX_REMEMBERED",
    "EventWatch",
    "parse_filter",
]

DEFAULT_WARN_BEFORE = 3600.0
"""Seconds before a hold's deadline its ``hold.deadline`` warning is posted (an hour); a hold
whose deadline is nearer than that when it is seen held has none (its ``task.held`` says the
deadline)."""

MAX_REMEMBERED = 100_000
"""Holds a watch remembers having seen (so a heartbeat listing one again is no new event)."""

DEFAULT_LOST_AFTER = 60.0
"""Seconds a run whose engine was lost may wait for a server to carry it on (a carry-on
starts within a second of the will; a server restarted in place, when it is back) before its
``run.lost`` is posted."""


def parse_filter(text: str) -> tuple[str, ...]:
    """``org/project/workflow`` (each level a glob, trailing ones optional) as its levels;
    ``ValueError`` for an empty level or more than three."""
    levels = tuple(text.split("/"))
    if len(levels) > 3 or any(not level for level in levels):
        raise ValueError(f"{text!r} is not ORG[/PROJECT[/WORKFLOW]] (each level a glob)")
    return levels


class EventWatch:
    """Feeds ``model`` and says which notifications each message makes.

    ``events``: the kinds wanted (of :data:`EVENTS`); ``filters``: levels of
    :func:`parse_filter`, any of which a run must match (none: every run); ``warn_before``:
    seconds before a hold's deadline its warning is due; ``dashboard_url``: where runs' pages
    are (``{dashboard_url}/runs/{run_id}``). An ``engine.lost`` passes a filter when one of the
    runs it was running does. ``lost_after``: seconds each of those runs may wait for a server
    to carry it on before its ``run.lost`` is due (:meth:`due`).
    """

    def __init__(
        self,
        model: ReaderModel,
        *,
        events: Iterable[str] = DEFAULT_EVENTS,
        filters: Iterable[tuple[str, ...]] = (),
        warn_before: float = DEFAULT_WARN_BEFORE,
        dashboard_url: str | None = None,
        clock: Callable[[], float] = time.time,
        lost_after: float = DEFAULT_LOST_AFTER,
    ) -> None:
        self.events = frozenset(events)
        unknown = self.events - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown events: {', '.join(sorted(unknown))}")
        self.model = model
        self.filters = tuple(filters)
        self.warn_before = warn_before
        self.dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self.clock = clock
        self._holds: OrderedDict[str, None] = OrderedDict()
        self._due: list[tuple[float, str, str, int]] = []  # (warn at, run, task, attempt)
        self.lost_after = lost_after
        self._lost_due: list[tuple[float, str]] = []  # (lost at, run): unless carried on by then
        # the runs carried on, seen: the org and project of the carry-on (only one of the lost
        # run's own place vouches that it was carried on: another tenant's engine cannot hide
        # a loss by naming a run it never had)
        self._carried: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def apply(self, message: Message) -> list[Notification]:
        """Fold ``message`` into the model; the notifications it makes (filtered)."""
        prefix = self.model.prefix
        kind, _, rest = message.topic.removeprefix(prefix + "/").partition("/")
        if kind == "telemetry":
            levels = rest.split("/")
            if len(levels) < 4:
                self.model.apply(message)
                return []
            return self._telemetry(message, decode_level(levels[2]), levels[3])
        if kind == "status":
            return self._status(message, decode_level(rest))
        self.model.apply(message)
        return []

    def due(self, now: float | None = None) -> list[Notification]:
        """The ``hold.deadline`` warnings due by ``now``, of holds still held, and the
        ``run.lost`` of each run whose engine was lost ``lost_after`` seconds ago that no
        server carried on (nor ended) meanwhile."""
        now = self.clock() if now is None else now
        out = []
        while self._due and self._due[0][0] <= now:
            _, run_id, task_id, attempt = heapq.heappop(self._due)
            run = self.model.runs.get(run_id)
            task = run.tasks.get(task_id) if run is not None else None
            hold = task.hold if task is not None else None
            if run is None or task is None or hold is None or hold.attempt != attempt:
                continue  # decided, or the run is gone
            if hold.deadline is not None and hold.deadline > now:
                out.append(self._held(run, task, "hold.deadline"))
        while self._lost_due and self._lost_due[0][0] <= now:
            _, run_id = heapq.heappop(self._lost_due)
            run = self.model.runs.get(run_id)
            if run is None or (run.finished and not run.lost):
                continue  # gone, or it ended after all (a will from a partition)
            if self._carried.get(run_id) == (run.org_id, run.project_id):
                continue  # carried on in its own place
            out.append(self._about(run, "run.lost", f"run.lost:{run_id}", now))
        return [n for n in out if self._wanted(n)]

    def next_due(self) -> float | None:
        """When the next warning or loss is due (epoch seconds), ``None``: none waits."""
        dues = [self._due[0][0]] if self._due else []
        if self._lost_due:
            dues.append(self._lost_due[0][0])
        return min(dues) if dues else None

    def _telemetry(self, message: Message, run_id: str, kind: str) -> list[Notification]:
        run = self.model.runs.get(run_id)
        ended = run is not None and run.finished
        held = run.count("HELD") if run is not None else 0
        known_origin = run is not None and run.origin is not None
        self.model.apply(message)
        run = self.model.runs.get(run_id)
        if run is None:
            return []
        out = []
        origin = run.origin
        if not known_origin and origin is not None and origin.carried_on_from is not None:
            self._carried[origin.carried_on_from] = (run.org_id, run.project_id)
            while len(self._carried) > MAX_REMEMBERED:
                self._carried.popitem(last=False)
            out.append(
                replace(
                    self._about(
                        run, "run.carried_on", f"run.carried_on:{run.run_id}", self.clock()
                    ),
                    carried_on_from=origin.carried_on_from,
                    lost_engine=origin.lost_engine,
                )
            )
        if run.finished and not ended:
            out.extend(self._ended(run))
        now_held = run.count("HELD")
        if now_held and (now_held != held or kind != "events"):  # heartbeats, snapshots
            out.extend(self._new_holds(run))
        return [n for n in out if self._wanted(n)]

    def _status(self, message: Message, source: str) -> list[Notification]:
        engine = self.model.engines.get(source)
        before = engine.status if engine is not None else None
        runs = tuple(sorted(engine.live_seen)) if engine is not None else ()
        self.model.apply(message)
        engine = self.model.engines.get(source)
        after = engine.status if engine is not None else None
        if (
            message.retain  # a will from the past: when it happened is not known
            or after is None
            or after is before
            or after.status != "offline"
            or after.reason is not None  # an engine that ended cleanly
            or (before is not None and before.status == "offline")
        ):
            return []
        first = self.model.runs.get(runs[0]) if runs else None
        if "run.lost" in self.events:
            for run_id in runs:
                heapq.heappush(self._lost_due, (self.clock() + self.lost_after, run_id))
        lost = Notification(
            kind="engine.lost",
            key=f"engine.lost:{source}:{after.session or 0}",
            at=self.clock(),
            source=source,
            runs=runs,
            org_id=first.org_id if first is not None else "",
            project_id=first.project_id if first is not None else "",
            url=self.dashboard_url,
        )
        return [lost] if self._wanted(lost) else []

    def _ended(self, run: RunView) -> list[Notification]:
        if run.status not in ("Failed", "Succeeded"):
            return []  # cancelled: a person ended it
        kind = "run.failed" if run.status == "Failed" else "run.succeeded"
        failed = [task for task in run.failed_tasks() if task.state == "FAILED"]
        first = min(failed, key=lambda task: task.since) if failed else None
        error = run.error
        return [
            replace(
                self._about(run, kind, f"{kind}:{run.run_id}", run.finished_at or self.clock()),
                task_id=first.task_id if first is not None else None,
                task_name=first.name if first is not None else None,
                error=error,
                error_line=last_line(first.traceback, first.error) if first is not None else error,
            )
        ]

    def _new_holds(self, run: RunView) -> list[Notification]:
        out = []
        for task in run.held_tasks():
            hold = task.hold
            if hold is None:
                continue
            key = f"{run.run_id}:{task.task_id}:{hold.attempt}"
            if key in self._holds:
                continue
            self._holds[key] = None
            if len(self._holds) > MAX_REMEMBERED:
                self._holds.popitem(last=False)
            # a deadline already within warn_before is said by task.held itself: one message,
            # not a "deadline near" a moment after it
            if hold.deadline is not None and hold.deadline - self.warn_before > self.clock():
                warn_at = hold.deadline - self.warn_before
                heapq.heappush(self._due, (warn_at, run.run_id, task.task_id, hold.attempt or 0))
            out.append(self._held(run, task, "task.held"))
        return out

    def _held(self, run: RunView, task: TaskView, kind: str) -> Notification:
        hold = task.hold
        assert hold is not None
        stamp = parse_timestamp(task.ts) if task.ts else None
        at = self.clock() if kind == "hold.deadline" or stamp is None else stamp
        return replace(
            self._about(run, kind, f"{kind}:{run.run_id}:{task.task_id}:{hold.attempt}", at),
            task_id=task.task_id,
            task_name=task.name,
            attempt=hold.attempt,
            error=task.error,
            error_line=last_line(task.traceback, task.error),
            deadline=hold.deadline,
            default=hold.default,
            prompt=hold.prompt,
        )

    def _about(self, run: RunView, kind: str, key: str, at: float) -> Notification:
        """A notification of ``kind`` about ``run`` (what the task adds, added by the caller)."""
        origin = run.origin
        return Notification(
            kind=kind,
            key=key,
            at=at,
            org_id=run.org_id,
            project_id=run.project_id,
            run_id=run.run_id,
            run_name=run.name,
            workflow=origin.workflow if origin is not None else None,
            source=run.source,
            url=f"{self.dashboard_url}/runs/{run.run_id}" if self.dashboard_url else None,
        )

    def _wanted(self, notification: Notification) -> bool:
        if notification.kind not in self.events:
            return False
        if not self.filters:
            return True
        if notification.kind == "engine.lost":
            runs = [self.model.runs.get(run_id) for run_id in notification.runs]
            return any(run is not None and self._matches(run) for run in runs)
        run = self.model.runs.get(notification.run_id)
        return run is not None and self._matches(run)

    def _matches(self, run: RunView) -> bool:
        origin = run.origin
        workflow = (origin.workflow if origin is not None else None) or run.name or ""
        names = (run.org_id, run.project_id, workflow)
        return any(
            all(fnmatchcase(name, level) for name, level in zip(names, levels, strict=False))
            for levels in self.filters
        )
