"""A page's stream of changes: what it holds, and the next event bringing it up to date.

A page follows a view: a page of runs, a page of engines (``_listing``), the constraints in
force, and maybe one open run with its tasks. Its stream's first event is a snapshot of that
view; each later one carries only what changed since (upserts and removals, part by part), at
most ``max_batch`` entities (the rest follows in the next). The follower remembers, for the
life of the stream, the version of each entity it sent, so a page that reads slowly is never
queued for: its next event is worked out from what it holds when it is ready for one.

The open run's tasks can resume across streams: a page that opens a new stream (another page
of runs, a filter) says up to which version it holds them (``since``, with the ``epoch`` of
the dashboard that said it) and gets only the tasks changed after. A page too far behind for
that (another dashboard's versions, an earlier life of the run, tasks that left its detail,
or owing more than a batch and half of the run's tasks) gets the run's tasks afresh, once.

The open run's task log lines come in a ``logs`` part of their own (``_log_window``): the last
ones first, then those heard since, bounded in bytes per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from cascade.control.access import Among
from cascade.reader import EngineView, RunView

from ._fleet_index import FleetRun
from ._hub import DashboardHub
from ._listing import Listing, Page, View, parse_view
from ._log_window import LogWindow
from ._model import Decidable
from ._shapes import constraint_dict, engine_dict
from ._visible_runs import seen_live

__all__ = ["MAX_BATCH", "STREAM_INTERVAL", "STREAM_PAGE", "Follower", "encode"]

#: A stream sends what changed (or the state) at most once per STREAM_INTERVAL seconds, however
#: fast events come.
STREAM_INTERVAL = 0.25

MAX_BATCH = 500
"""The most entities (runs, engines, constraints, tasks: upserts and removals) one change
event carries; a snapshot carries the whole view."""
STREAM_PAGE = 100
"""The runs, and the engines, of a stream's view when it names no ``limit`` (``engines_limit``);
the page names its own."""

Part = tuple[str, "dict[str, Any] | None", int, bool]  # name, part, entities in it, cut short
_ALWAYS = frozenset({"version", "epoch", "now", "connection"})


def encode(value: Any) -> bytes:
    """``value`` as JSON, where a ``bytes`` inside it is JSON already (an entity, built once
    for every page), spliced in as it is."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        pairs = (json.dumps(key).encode() + b":" + encode(item) for key, item in value.items())
        return b"{" + b",".join(pairs) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(item) for item in value) + b"]"
    return json.dumps(value).encode()


class _Window:
    """What a page holds of one paged list: each entity's version as sent, the order, the
    counts."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}
        self.order: list[str] | None = None
        self.counts: tuple[int, int, str | None] | None = None

    def changes(
        self,
        page: Page[Any],
        versions: list[tuple[str, int]],
        build: Callable[[Any], bytes],
        budget: float,
    ) -> tuple[dict[str, Any] | None, int, bool]:
        """This list's part of the next event, the entities in it, and whether it was cut."""
        part: dict[str, Any] = {"reset": True} if self.order is None else {}
        order = [key for key, _ in versions]
        shown = set(order)
        removed: list[str] = []
        upserts: list[bytes] = []
        cut = False
        for key in [key for key in self.held if key not in shown]:
            if len(removed) >= budget:
                cut = True
                break
            removed.append(key)
            del self.held[key]
        for (key, version), item in zip(versions, page.items, strict=True):
            if self.held.get(key) == version:
                continue
            if len(removed) + len(upserts) >= budget:
                cut = True
                break
            upserts.append(build(item))
            self.held[key] = version
        if removed:
            part["remove"] = removed
        if upserts:
            part["upsert"] = upserts
        if order != self.order:
            part["order"] = self.order = order
        counts = (page.matching, page.total, page.next_after)
        if counts != self.counts:
            self.counts = counts
            part.update(matching=page.matching, total=page.total, next_after=page.next_after)
        return part or None, len(removed) + len(upserts), cut


def _bare_engine_json(engine: EngineView) -> bytes:
    """An engine without its summary (it lists every project's runs)."""
    return json.dumps(engine_dict(engine, summary=False)).encode()


class Follower:
    """One stream's page: its view, what it holds of it, and its next event.

    ``run_id`` is the open run (``None``: none); ``since`` and ``epoch`` say up to which
    version of which dashboard the page holds that run's tasks (``0``: none); ``task`` picks
    the open run's log lines the page gets (a task id, name or glob; ``None``: every task's).
    """

    def __init__(
        self,
        hub: DashboardHub,
        listing: Listing,
        view: View,
        *,
        run_id: str | None = None,
        since: int = 0,
        epoch: str | None = None,
        task: str | None = None,
        controls: bool = False,
        decidable: Decidable | None = None,
        max_batch: int = MAX_BATCH,
        max_age: float = STREAM_INTERVAL,
        among: Among | None = None,
    ) -> None:
        self.hub = hub
        self.model = hub.model
        self.listing = listing
        self.view = view
        self.run_id = run_id
        """The run the page asked for (its address's), which it gets only once it may see it:
        before, a run the reader may not see and one not heard of yet are both left out."""
        self.among = among
        self._run_shown = among is None
        self.controls = controls
        self.decidable = decidable
        """Which held tasks the page may decide on (``None``: none)."""
        self.max_batch = max_batch
        self.max_age = max_age
        self.more = False
        """Whether the last event left changes for the next (it was cut at ``max_batch``)."""
        self.events = 0
        """Events made so far."""
        self._header: dict[str, bytes] = {}
        self._held: bytes | None = None
        self._connected: bool | None = None
        self.mode = hub.model.fleet.mode
        """The mode (``events`` or ``fleet``) the page's runs were read in."""
        self._runs = _Window()
        self._engines = _Window()
        self._constraints: dict[str, int] | None = None
        self._run: int | None = None  # the open run's summary version sent (-1: null sent)
        resumable = epoch == self.model.epoch and 0 < since <= self.model.version
        self._tasks_through = since if resumable else 0
        self._tasks_born: int | None = None
        self._first_part = 0
        self._logs = LogWindow(task)

    def afresh(self) -> Follower:
        """A follower of the same view that holds nothing yet: its first event is a fresh
        snapshot (what a page that fell behind gets instead of the changes it owes)."""
        return Follower(
            self.hub,
            self.listing,
            self.view,
            run_id=self.run_id,
            task=self._logs.task,
            controls=self.controls,
            decidable=self.decidable,
            max_batch=self.max_batch,
            max_age=self.max_age,
        )

    @classmethod
    def asked(
        cls,
        hub: DashboardHub,
        params: Mapping[str, str],
        listing: Listing | None = None,
        **options: Any,
    ) -> Follower:
        """The follower of the view a stream's parameters ask for: those of ``/api/state``
        (``_listing``), ``run``, ``since``, ``epoch`` and ``task``; ``ValueError`` saying what is
        wrong. ``among``: the orgs and projects the reader may see (``None``: all)."""
        since = params.get("since") or "0"
        if not (since.isascii() and since.isdigit()):
            raise ValueError("since must be a whole number: the version the page holds")
        among = options.pop("among", None)
        view = parse_view(params, runs_limit=STREAM_PAGE, engines_limit=STREAM_PAGE, among=among)
        return cls(
            hub,
            listing or Listing(hub.model),
            view,
            run_id=params.get("run") or None,
            since=int(since),
            epoch=params.get("epoch") or None,
            task=params.get("task") or None,
            among=among,
            **options,
        )

    def next_event(self) -> bytes | None:
        """The next event (a ``snapshot`` first, then ``delta``s); ``None`` when nothing the
        page holds changed."""
        model = self.model
        first = self.events == 0
        out: dict[str, Any] = {"version": model.version, "epoch": model.epoch, "now": model.clock()}
        header = dict(self.listing.header(self.hub.connection, self.max_age))
        header["controls"] = b"true" if self.controls else b"false"
        if self.view.runs.among is not None:  # the fleet's totals count every project's runs
            header["fleet"] = b"null"
        for name, value in header.items():
            if self._header.get(name) != value:
                out[name] = self._header[name] = value
        held = json.dumps(model.held.listed(self.view.runs.among, self.decidable)).encode()
        if held != self._held:  # the Decisions list, whole: it is bounded
            out["held"] = self._held = held
        connected = self.hub.connector.is_connected
        news = first or connected != self._connected
        self._connected = connected
        if self.mode != model.fleet.mode:  # the runs' list changed source: sent afresh
            self.mode, self._runs = model.fleet.mode, _Window()
        if self.run_id is not None and not self._run_shown:
            # a run of the reader's heard of since: from now on; hidden: as one unknown, ever
            self._run_shown = seen_live(model, self.run_id, self.among) is not None
        if self._open_run():
            assert self.run_id is not None
            run = model.open_run(self.run_id)
            version = model.run_version(run) if run is not None else -1
            if version != self._run:
                self._run = version
                out["run"] = self._run_json(run) if run is not None else None
        budget = float("inf") if first else float(self.max_batch)
        parts = (self._runs_part, self._engines_part, self._constraints_part, self._tasks_part)
        resets = first
        self.more = False
        for index in range(len(parts)):
            turn = (self._first_part + index) % len(parts)
            name, part, used, cut = parts[turn](budget)
            budget -= used
            if part is not None:
                out[name] = part
                resets = resets and bool(part.get("reset"))
            if cut and not self.more:
                self.more = True
                # round robin: the parts after the one cut short go first next time, so that
                # a list changing by more than a batch at every look starves no other
                self._first_part = (turn + 1) % len(parts)
        if self._open_run():
            assert self.run_id is not None
            logs, cut = self._logs.part(model.logs, self.run_id)
            if logs is not None:
                out["logs"] = logs
            self.more = self.more or cut
        if not news and set(out) <= _ALWAYS:
            return None  # the connection's message count alone: ticks say it
        out["more"] = self.more
        self.events += 1
        kind = b"snapshot" if resets else b"delta"
        return b"event: " + kind + b"\ndata: " + encode(out) + b"\n\n"

    def _open_run(self) -> bool:
        """Whether the page has a run open that it may see (its parts are sent)."""
        return self.run_id is not None and self._run_shown

    def _run_json(self, run: RunView | FleetRun) -> bytes:
        extras = json.dumps(self.model.detail_extras(run.run_id)).encode()
        return self.model.run_json(run)[:-1] + b", " + extras[1:]

    def _runs_part(self, budget: float) -> Part:
        page = self.listing.run_page(self.view.runs, self.max_age)
        listing = self.listing  # a row is its run's and its line's (_lines)
        versions = [(run.run_id, listing.row_version(run)) for run in page.items]
        part, used, cut = self._runs.changes(page, versions, listing.row_json, budget)
        return "runs", part, used, cut

    def _engines_part(self, budget: float) -> Part:
        page = self.listing.engine_page(self.view.engines, self.max_age)
        known = self.model.versions.engines
        versions = [(engine.source, known.get(engine.source, 0)) for engine in page.items]
        as_json = self.model.engine_json if self.view.runs.among is None else _bare_engine_json
        part, used, cut = self._engines.changes(page, versions, as_json, budget)
        return "engines", part, used, cut

    def _constraints_part(self, budget: float) -> Part:
        known = self.model.versions.constraints
        part: dict[str, Any] = {"reset": True} if self._constraints is None else {}
        held = self._constraints = self._constraints or {}
        active = self.model.state.active_constraints()
        shown = {topic for topic, _ in active}
        removed = [topic for topic in held if topic not in shown]
        changed = [(t, c) for t, c in active if held.get(t) != known.get(t, 0)]
        cut = len(removed) + len(changed) > budget
        room = max(0.0, budget)
        removed = removed[: int(min(room, len(removed)))]
        changed = changed[: int(min(room - len(removed), len(changed)))]
        for topic in removed:
            del held[topic]
        for topic, _ in changed:
            held[topic] = known.get(topic, 0)
        if removed:
            part["remove"] = removed
        if changed:
            part["upsert"] = [constraint_dict(topic, c) for topic, c in changed]
        return "constraints", part or None, len(removed) + len(changed), cut

    def _tasks_part(self, budget: float) -> Part:
        if not self._open_run():
            return "tasks", None, 0, False
        assert self.run_id is not None
        model = self.model
        log = model.task_log(self.run_id)
        if log is None:
            if self._tasks_born is None and self.events:
                return "tasks", None, 0, False
            self._tasks_born, self._tasks_through = None, 0
            return "tasks", {"reset": True, "upsert": [], "through": model.version}, 0, False
        if self._tasks_born is None and self._tasks_through >= log.born:
            self._tasks_born = log.born  # resumed from the page's `since`
        if self._tasks_born != log.born or self._tasks_through < log.reset:
            return self._all_tasks(log.born)
        changed = log.since(self._tasks_through)
        if not changed:
            return "tasks", None, 0, False
        cut = len(changed) > budget
        if cut and 2 * len(changed) >= len(log.versions):
            return self._all_tasks(log.born)  # too far behind: one fresh snapshot of them
        if cut and budget < 1:
            return "tasks", None, 0, True
        if cut:
            last = changed[int(budget) - 1][1]
            # a message's tasks share its version: they go together, or `through` would skip
            changed = [(task_id, at) for task_id, at in changed if at <= last]
            self._tasks_through = last
        else:
            self._tasks_through = model.version
        upserts = [
            found
            for task_id, _ in changed
            if (found := model.task_json(self.run_id, task_id)) is not None
        ]
        part = {"upsert": upserts, "through": self._tasks_through}
        return "tasks", part, len(changed), cut

    def _all_tasks(self, born: int) -> Part:
        assert self.run_id is not None
        model = self.model
        upserts = [
            found
            for task_id in model.task_ids(self.run_id)
            if (found := model.task_json(self.run_id, task_id)) is not None
        ]
        self._tasks_born, self._tasks_through = born, model.version
        part = {"reset": True, "upsert": upserts, "through": model.version}
        return "tasks", part, len(upserts), False
