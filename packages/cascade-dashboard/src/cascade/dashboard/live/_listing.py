"""The runs' and the engines' lists a page at a time: filters, a stable order, cursors.

Runs are listed the running ones first, then the newest first (by when the dashboard first
heard of each), then by id; engines by source. A page is the first ``limit`` of those matching
the filters after a cursor (``after``: the ``next_after`` of the page before), so that paging
never skips nor repeats a row however the lists grow meanwhile: new runs come before the
cursor. The sorted lists are shared by every page and request, and sorted again only when the
order may have moved (a run or engine came or went, a run started or stopped running).
In fleet mode the runs are those the engines' summaries list (``_fleet_index``), kept in
that order as they change: nothing is sorted again.

A run and its reruns and carry-ons are one row, as the history's list folds them
(``_lines``): the row of the line's latest run (of those the filters match), at that run's
place in the order, with the line's runs; a page counts rows, one per line of work.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from cascade.control.access import Among
from cascade.reader import ENDED_FOLD_AFTER, EngineView, RunView, ended_cleanly

from ._fleet_index import FLEET, FleetRun
from ._lines import LinesOfWork
from ._model import DashboardModel

__all__ = [
    "ENDED",
    "MAX_PAGE",
    "PAGED_PARAMS",
    "EngineQuery",
    "Listing",
    "Page",
    "RunQuery",
    "View",
    "covers",
    "folded_test",
    "parse_problems",
    "parse_view",
]

MAX_PAGE = 500
"""The most runs, or engines, one page lists; a larger ``limit`` is refused."""
PAGED_PARAMS = frozenset(
    {
        "limit",
        "after",
        "project",
        "status",
        "engine",
        "name",
        "trigger",
        "engines_limit",
        "engines_after",
        "engine_status",
    }
)
"""The parameters of ``/api/state`` that page or filter it: without any, it answers as it
always did (every engine, the 100 runs heard of last)."""

_T = TypeVar("_T")
RunKey = tuple[int, float, str]


def covers(among: Among | None, run: RunView | FleetRun) -> bool:
    """Whether ``run`` is of the orgs and projects of ``among`` (``None``: of any)."""
    return among is None or (run.org_id, None) in among or (run.org_id, run.project_id) in among


@dataclass(frozen=True)
class RunQuery:
    """Which runs a page lists: those matching the filters, ``limit`` after ``after``."""

    limit: int
    after: RunKey | None = None
    project: str | None = None
    status: str | None = None
    """Compared without case: ``running``, ``succeeded``, ``failed``, ``cancelled``."""
    engine: str | None = None
    among: Among | None = None
    """The orgs and projects the reader may see (``None``: all; see :class:`Access`)."""
    name: str | None = None
    """The runs of that name (:attr:`RunView.name`), exactly, as the history's ``name``."""
    trigger: str | None = None
    """The runs that trigger started (their origin's ``trigger``), exactly, as the history's
    ``trigger``: an engine's summary says no origin, so a fleet's summarised run is none."""

    @property
    def filtered(self) -> bool:
        """Whether any filter is set."""
        return bool(self.project or self.status or self.engine or self.name or self.trigger) or (
            self.among is not None
        )

    def matches(self, run: RunView | FleetRun) -> bool:
        """Whether ``run`` passes the filters."""
        return (
            covers(self.among, run)
            and (self.project is None or run.project_id == self.project)
            and (self.status is None or run.status.lower() == self.status)
            and (self.engine is None or run.source == self.engine)
            and (self.name is None or _name(run) == self.name)
            and (self.trigger is None or _trigger(run) == self.trigger)
        )


def _name(run: RunView | FleetRun) -> str | None:
    """A run's name: its view's, or the one its engine's summary lists."""
    return run.run.name if isinstance(run, FleetRun) else run.name


def _trigger(run: RunView | FleetRun) -> str | None:
    """The trigger that started a run: its view's origin's (a summary says none)."""
    if isinstance(run, FleetRun) or run.origin is None:
        return None
    return run.origin.trigger


@dataclass(frozen=True)
class EngineQuery:
    """Which engines a page lists: the one named (``engine``), or those in a ``status``,
    ``limit`` (``None``: all) after the source ``after``."""

    limit: int | None
    after: str | None = None
    engine: str | None = None
    status: str | None = None
    """``online``, ``offline`` or ``unknown`` (only its telemetry was heard); or ``ended``:
    those that ended cleanly a while ago, which the other lists leave out but ``offline``
    (see :meth:`~cascade.reader.ReaderModel.engine_rows`)."""

    def matches(self, engine: EngineView, folded: bool = False) -> bool:
        """Whether ``engine`` (``folded``: it ended cleanly a while ago) passes the filters."""
        if self.engine is not None and engine.source != self.engine:
            return False
        if self.status == ENDED:
            return folded
        status = engine.status.status if engine.status is not None else "unknown"
        if self.status is None:
            return not folded or self.engine is not None
        return status == self.status


@dataclass(frozen=True)
class View:
    """A page's view of the lists: its page of runs and its page of engines."""

    runs: RunQuery
    engines: EngineQuery


@dataclass(frozen=True)
class Page(Generic[_T]):
    """One page of a list: its ``items``, how many match the filters and how many there are
    in all, and the cursor of the next page (``None``: this is the last)."""

    items: list[_T]
    matching: int
    total: int
    next_after: str | None


def cursor(key: Any) -> str:
    """An opaque cursor for the row of sort key ``key``."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _key(text: str, name: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} must be the next_after of a page of this dashboard") from None


def _run_key(text: str) -> RunKey:
    key = _key(text, "after")
    if (
        not isinstance(key, list)
        or len(key) != 3
        or not isinstance(key[0], int)
        or not isinstance(key[1], (int, float))
        or not isinstance(key[2], str)
    ):
        raise ValueError("after must be the next_after of a page of this dashboard")
    return (key[0], float(key[1]), key[2])


def _limit(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def parse_view(
    params: Mapping[str, str],
    *,
    runs_limit: int,
    engines_limit: int | None,
    among: Among | None = None,
) -> View:
    """The view a request's parameters ask for (:data:`PAGED_PARAMS`), with these limits when
    it gives none, of the runs of ``among`` only (when given); ``ValueError`` saying what is
    wrong with one."""
    text = {name: params.get(name) or None for name in PAGED_PARAMS}
    engine_after = text["engines_after"]
    engine_key = _key(engine_after, "engines_after") if engine_after else None
    if engine_key is not None and not (
        isinstance(engine_key, list) and len(engine_key) == 1 and isinstance(engine_key[0], str)
    ):
        raise ValueError("engines_after must be the next_after of a page of this dashboard")
    status = text["status"]
    runs = RunQuery(
        limit=_limit(params, "limit", runs_limit) or runs_limit,
        after=_run_key(text["after"]) if text["after"] else None,
        project=text["project"],
        status=status.lower() if status else None,
        engine=text["engine"],
        among=among,
        name=text["name"],
        trigger=text["trigger"],
    )
    engines = EngineQuery(
        limit=_limit(params, "engines_limit", engines_limit),
        after=engine_key[0] if engine_key else None,
        engine=text["engine"],
        status=text["engine_status"],
    )
    return View(runs, engines)


def parse_problems(params: Mapping[str, str]) -> tuple[int, str | None]:
    """The ``limit`` (100 unless given) and the source after which (``after``: a page's
    ``next_after``) a page of ``/api/problems/{kind}`` is asked for; ``ValueError`` saying
    what is wrong."""
    after = params.get("after") or None
    key = _key(after, "after") if after else None
    if key is not None and not (
        isinstance(key, list) and len(key) == 1 and isinstance(key[0], str)
    ):
        raise ValueError("after must be the next_after of a page of this dashboard")
    return _limit(params, "limit", 100) or 100, key[0] if key else None


@dataclass
class _Sorted(Generic[_T]):
    order: int
    at: float
    keys: list[Any]
    items: list[_T]


class Listing:
    """The model's runs and engines in the pages' order, sorted once for every page.

    ``max_age`` (seconds) lets a caller take lists sorted a moment ago although the order
    moved since (the streams do, ``/api/state`` does not): sorting thousands of runs for
    each of a hundred streams would take the loop from the messages.
    """

    def __init__(self, model: DashboardModel, clock: Callable[[], float] = time.monotonic):
        self.model = model
        self.clock = clock
        self.sorts = 0
        self._runs: _Sorted[RunView] | None = None
        self.lines = LinesOfWork()
        """The live runs' lines of work, as last sorted (events mode)."""
        self._engines: _Sorted[EngineView] | None = None
        self._pages: dict[Any, tuple[int, float, Page[Any]]] = {}
        self._header: tuple[int, float, dict[str, bytes]] | None = None

    def header(self, connection: Callable[[], Any], max_age: float = 0.0) -> dict[str, bytes]:
        """The small parts every page shares, each as JSON: ``connection()``, and what the
        model ignored, missed and refused (:meth:`DashboardModel.header`; ``missed`` and
        ``refused`` name every source concerned, so they are built once for all)."""
        now, version = self.clock(), self.model.version
        kept = self._header
        if kept is None or (kept[0] != version and now - kept[1] >= max_age):
            parts = {
                name: json.dumps(value).encode() for name, value in self.model.header().items()
            }
            parts["connection"] = json.dumps(connection()).encode()
            kept = self._header = (version, now, parts)
        return kept[2]

    def runs(self, max_age: float = 0.0) -> _Sorted[RunView]:
        """Every run, in the runs' order, with its sort keys."""
        order, now = self.model.versions.runs_order, self.clock()
        kept = self._runs
        if kept is None or (kept.order != order and now - kept.at >= max_age):
            held = self.model.state.runs
            keys, runs = [], []
            for key in sorted(self.model.run_keys()):  # the bare keys: compared in C
                run = held.get(key[2])
                if run is not None:
                    keys.append(key)
                    runs.append(run)
            kept = self._runs = _Sorted(order, now, keys, runs)
            self.lines.rebuild(keys, runs, self.model.version)
            self.sorts += 1
        return kept

    def engines(self, max_age: float = 0.0) -> _Sorted[EngineView]:
        """Every engine, by source."""
        order, now = self.model.versions.engines_order, self.clock()
        kept = self._engines
        if kept is None or (kept.order != order and now - kept.at >= max_age):
            engines = sorted(self.model.state.engines.values(), key=_source)
            kept = self._engines = _Sorted(order, now, [[e.source] for e in engines], engines)
        return kept

    def run_page(self, query: RunQuery, max_age: float = 0.0) -> Page[RunView | FleetRun]:
        """The page of runs ``query`` asks for (in fleet mode, of the summaries' runs)."""
        fleet = self.model.fleet
        listed: _Sorted[Any]
        among = query.among  # its total: of the runs the reader may see, not every project's
        if fleet.mode == FLEET:  # a summary's run names no line: each is its own
            held: Mapping[str, Any] = fleet.runs
            listed = _Sorted(fleet.order, self.clock(), fleet.keys, fleet.items)
            return self._page(
                (fleet.mode, query),
                listed,
                query.after,
                query.limit,
                max_age,
                lambda run: held.get(run.run_id) is run and query.matches(run),
                query.filtered,
                len(held),
                None
                if among is None
                else lambda run: held.get(run.run_id) is run and covers(among, run),
            )
        held = self.model.state.runs
        listed = cast("_Sorted[Any]", self.runs(max_age))
        folded = self.lines.folded  # a line never crosses a project: among sees it whole or none
        if query.filtered:  # the latest run of each line among those matching
            matches: Callable[[Any], bool] = lambda run: (  # noqa: E731
                query.matches(run) and held.get(run.run_id) is run
            )
            among_folded = self.lines.folded_among(matches)
            keep = lambda run: run.run_id not in among_folded and matches(run)  # noqa: E731
        else:
            keep = lambda run: run.run_id not in folded and held.get(run.run_id) is run  # noqa: E731
        rows = len(held) - len(folded)
        return self._page(
            (fleet.mode, query),
            listed,
            query.after,
            query.limit,
            max_age,
            keep,
            query.filtered,
            rows,
            None
            if among is None
            else lambda run: (
                run.run_id not in folded and held.get(run.run_id) is run and covers(among, run)
            ),
            matching=None if query.filtered else rows,
        )

    def row(self, run: RunView | FleetRun) -> dict[str, Any]:
        """``run``'s row of the runs' list: its summary and its line of work (``line``,
        ``line_more``: see ``_lines``)."""
        return {**self.model.run_summary(run), **self.lines.part(run)}

    def row_version(self, run: RunView | FleetRun) -> int:
        """The version ``run``'s row last changed at (its line's runs' included)."""
        return self.lines.row_version(run, self.model.run_version)

    def row_json(self, run: RunView | FleetRun) -> bytes:
        """``run``'s row (:meth:`row`) as JSON, built once per change of it."""
        return self.lines.row_json(run, self.row_version(run), self.model.run_json)

    def engine_page(self, query: EngineQuery, max_age: float = 0.0) -> Page[EngineView]:
        """The page of engines ``query`` asks for (those that ended cleanly a while ago are
        left out of every list but ``ended``'s and ``offline``'s)."""
        held = self.model.state.engines
        after = [query.after] if query.after is not None else None
        if query.engine is None and query.status is None:
            # every engine but the folded ones, which are few and known without a walk: the
            # page reads its rows and no more (a fleet's thousands, at every request)
            gone = self.model.folded_engines()
            return self._page(
                query,
                self.engines(max_age),
                after,
                query.limit,
                max_age,
                lambda engine: held.get(engine.source) is engine and engine.source not in gone,
                False,
                len(held),
                matching=len(held) - len(gone),
            )
        folded = folded_test(self.model.state.clock())
        return self._page(
            query,
            self.engines(max_age),
            after,
            query.limit,
            max_age,
            lambda engine: (
                held.get(engine.source) is engine and query.matches(engine, folded(engine))
            ),
            True,
            len(held),
        )

    def _page(
        self,
        query: Any,
        listed: _Sorted[_T],
        after: Any,
        limit: int | None,
        max_age: float,
        keep: Callable[[_T], bool],
        filtered: bool,
        total: int,
        seen: Callable[[_T], bool] | None = None,
        matching: int | None = None,
    ) -> Page[_T]:
        """The page; ``total``: how many there are, or (``seen``) how many pass ``seen``;
        ``matching``: how many pass ``keep``, when known (unfiltered: ``total``)."""
        now = self.clock()
        version = self.model.version
        kept = self._pages.get(query)
        if kept is not None and (kept[0] == version or now - kept[1] < max_age):
            page: Page[_T] = kept[2]
            return page
        start = bisect_right(listed.keys, after) if after is not None else 0
        wanted = limit if limit is not None else len(listed.items)
        items: list[_T] = []
        last = None
        more = False
        known, matching = matching, 0
        counted = 0
        for index in range(0 if filtered else start, len(listed.items)):
            item = listed.items[index]
            if seen is not None and seen(item):
                counted += 1
            if not keep(item):
                continue
            matching += 1
            if index < start:
                continue
            if len(items) < wanted:
                items.append(item)
                last = listed.keys[index]
            else:
                more = True
                if not filtered:
                    break
        if not filtered:
            matching = total if known is None else known
        if seen is not None:
            total = counted
        page = Page(items, matching, total, cursor(last) if more and last is not None else None)
        if max_age > 0:
            self._pages = {q: p for q, p in self._pages.items() if now - p[1] < max_age}
            self._pages[query] = (version, now, page)
        return page


ENDED = "ended"
"""The engines' list of those that ended cleanly a while ago (``engine_status=ended``)."""


def folded_test(now: float) -> Callable[[EngineView], bool]:
    """Whether an engine ended cleanly :data:`ENDED_FOLD_AFTER` seconds before ``now`` or
    earlier: folded into the count the page shows."""
    before = now - ENDED_FOLD_AFTER

    def folded(engine: EngineView) -> bool:
        seen = engine.last_seen
        return ended_cleanly(engine) and (seen is None or seen <= before)

    return folded


def _source(engine: EngineView) -> str:
    return engine.source
