"""The dashboard's history (``--db URL``, else `cascade record`'s default): JSON endpoints.

Every reply is bounded: lists take ``limit`` up to :data:`MAX_LIMIT` (a larger one is a 400
saying so), and a run's detail is the run, its counts and one page of :data:`RUN_PAGE` tasks
with the cursor of the next (``/api/history/run?id=RUN&after=CURSOR``; ``next_after`` is
``null`` on the last page): a map's row standing for its items, counted per map in the first
page's ``maps``, and ``&map=TASK_ID`` paging one map's items (its row opened). Each query and
its JSON encoding run in a worker thread, never on the event loop, so the live page keeps
answering during a big read.

Each person gets a fair share and operators come first: a query takes its turn on the
workers of ``_fair_share`` (:class:`HistoryReaders`); one's own excess is a 429, a dashboard
too busy a 503, both with ``Retry-After``. The parameters are those of
`cascade runs` (and ``logging=TEXT``: the runs whose logs contain it), `run`, `tasks` and
`audit`; ``/api/history/runs/{run_id}/logs`` gives a run's recorded log lines a page at a
time. ``/api/history/runs``, ``/api/history/tasks`` and ``/api/history/audit`` with
``format=csv`` or ``format=jsonl`` are a file to download of what the same parameters list
(``_export``: the fields of `cascade runs --json`, `cascade tasks --json`, `cascade audit
--json`), up to :data:`MAX_EXPORT` rows (``Cascade-More``
says whether more matched). A database that cannot be read answers 503 with its
one line, a bad parameter 400, and a dashboard without a history 404 on every one of them,
saying why (``/api/history`` too, with 200: the page shows it). Everything is JSON: the page
shows each string as text.

In a team's dashboard each reader sees their orgs' and projects' runs only, filtered in the
query itself (``_visible_runs``: another tenant's run is an unknown one, at the same cost),
and ``/api/history`` tells where the history is to admins over global only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from cascade.control.run_ids import checked_prefix, one_run
from cascade.interfaces.wire import LOG_LEVELS
from cascade.reader import FINISHED_STATES, parse_age

from .._guard import Refused, refusal
from .._history_source import HistorySource
from ..live._fair_share import RETRY_AFTER, HistoryReaders, claimant
from ..live._visible_runs import NO_SUCH_RUN
from ._export import MAX_EXPORT, export_body, export_format, file_name

if TYPE_CHECKING:
    from cascade.control.access import Access, Among
    from cascade.history import History, RunSummary, StateChange, TaskHistory

    from ..auth._team import Team

__all__ = [
    "MAX_LIMIT",
    "RUN_PAGE",
    "history_routes",
    "segments",
]

MAX_LIMIT = 500
"""The most rows one list request returns; a larger ``limit`` is a 400."""
RUN_PAGE = 500
"""The tasks in one page of a run's detail."""
_LEVELS = LOG_LEVELS  # ?level=warning
_ITEM = re.compile(r"\[[0-9]+\]\Z")  # a map's item's task id ends so (docs/protocol.md)
_ITERATION = re.compile(r"@[0-9]+\Z")  # a loop's iteration's, its loop's id before the @
_NO_HISTORY = "no history here: start the dashboard with --db URL"
"""Why a dashboard given no history (``create_app`` without one) has none."""


def segments(states: list[StateChange]) -> list[dict[str, Any]]:
    """A task's states as the live timeline draws them: a segment per state it was in, each
    ending when the next began, a RUNNING one with the state it ended in (its ``outcome``)."""
    drawn: list[dict[str, Any]] = []
    for change in states:
        if drawn and drawn[-1]["end"] is None:
            drawn[-1]["end"] = change.ts
            drawn[-1]["outcome"] = change.state
        if change.state not in ("COMPLETED", "FAILED", "CANCELLED") or not drawn:
            end = change.ts if change.state in FINISHED_STATES else None
            outcome = change.state if end is not None else None
            drawn.append(
                {"state": change.state, "start": change.ts, "end": end, "outcome": outcome}
            )
    return drawn


def _age(request: Request, name: str, default: str | None) -> float | None:
    """The moment ``?name=AGE`` ago (epoch seconds); ``all`` or nothing: ``None``."""
    text = request.query_params.get(name, default)
    if text is None or text == "all":
        return None
    try:
        return parse_age(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _limit(request: Request, default: int, most: int = MAX_LIMIT) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise ValueError(f"limit must be a whole number from 1 to {most}")
    return int(text)


def _text(request: Request, name: str) -> str | None:
    """A text parameter; empty means not given."""
    return request.query_params.get(name) or None


@dataclass(frozen=True)
class _Reply:
    """What a history request is answered with."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _encoded(value: Any) -> bytes:
    """``value`` as the JSON body Starlette's JSONResponse would make."""
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


class _HistoryApi:
    def __init__(
        self,
        source: HistorySource,
        holder: Callable[[Scope], str | None],
        team: Team | None = None,
    ) -> None:
        self.source = source
        self.holder = holder
        self.team = team
        self.readers = HistoryReaders()

    async def answer(
        self,
        request: Request,
        job: Callable[[History, Request, Among | None], Any],
        covers_all: str | None = None,
        shape: Callable[[Any], _Reply] | None = None,
    ) -> Response:
        """``job(history, request, among)`` and its JSON (or what ``shape`` makes of what it
        found: a download) in a worker thread; its errors as refusals. In a team's dashboard,
        ``among`` is what the reader may see (``None``: all), and a query that ``covers_all``
        projects is for those who see them all."""
        among = None
        access = self.asker(request)
        if access is not None:
            assert self.team is not None
            reason = access.may_see_everything(covers_all) if covers_all else None
            if reason is not None:
                self.team.refuse(access, "read", request.url.path, reason)
            among = access.among()
        if self.source.history is None:
            await self.source.refresh()
        history = self.source.history
        if history is None:
            return refusal(404, self.source.note_for(_told_where(access)) or _NO_HISTORY)

        def work() -> _Reply:
            from cascade.history import HistoryError

            try:
                value = job(history, request, among)
            except HistoryError as exc:
                return _Reply(503, _encoded({"error": str(exc)}))
            except ValueError as exc:
                return _Reply(400, _encoded({"error": str(exc)}))
            if value is None:
                return _Reply(404, _encoded({"error": NO_SUCH_RUN}))
            return shape(value) if shape is not None else _Reply(200, _encoded(value))

        done = await self.readers.run(claimant(request.scope, access, self.holder), work)
        if isinstance(done, Refused):
            return refusal(done.status, done.message, **{"Retry-After": RETRY_AFTER})
        return Response(
            done.body,
            status_code=done.status,
            media_type=done.media_type,
            headers={"cache-control": "no-store", **done.headers},
        )

    def asker(self, request: Request) -> Access | None:
        """In a team's dashboard, the access of the request's sender (else the refusal is
        raised: nobody signed in, 401; no role, 403, audited); ``None`` in any other
        (everyone reads)."""
        return self.team.reader(request.scope) if self.team is not None else None

    async def status(self, request: Request) -> Response:
        """Whether this dashboard has a history, where, and if not why (``note``: what to do;
        ``null`` when none is wanted): the page asks before it asks for any. In a team's
        dashboard, for those with a role only, and where it is (its path or URL, in
        ``location`` and the ``note``) for admins over global only."""
        access = self.asker(request)
        await self.source.refresh()
        source = self.source
        where = _told_where(access)
        answer = {
            "history": source.history is not None,
            "location": source.location if where else None,
            "note": source.note_for(where),
            "run_page": RUN_PAGE,
        }
        return Response(
            _encoded(answer), media_type="application/json", headers={"cache-control": "no-store"}
        )

    async def runs(self, request: Request) -> Response:
        """The runs the filters pick, as JSON, or (``?format=csv|jsonl``) a file of them."""
        return await self.listed(request, _runs, "runs", _run_rows)

    async def run(self, request: Request) -> Response:
        return await self.answer(request, _run)

    async def tasks(self, request: Request) -> Response:
        """Per task name, its statistics as JSON, or (``?format=csv|jsonl``) a file of them."""
        covers_all = "the task statistics"
        return await self.listed(request, _tasks, "tasks", _task_rows, covers_all)

    async def listed(
        self,
        request: Request,
        job: Callable[[History, Request, Among | None], Any],
        what: str,
        rows: Callable[[History, Request, Among | None], tuple[list[dict[str, Any]], bool]],
        covers_all: str | None = None,
    ) -> Response:
        """A list's JSON (``job``), or its ``rows`` as the download ``?format=`` asks for
        (:mod:`._export`), by the same filters and of the same runs the reader may see."""
        try:
            export = export_format(request.query_params)
        except ValueError as exc:
            return refusal(400, str(exc))
        if export is None:
            return await self.answer(request, job, covers_all)

        def shape(found: tuple[list[dict[str, Any]], bool]) -> _Reply:
            listed, more = found
            body = export_body(what, export, listed)
            name = file_name(what, export, time.time())
            headers = {
                "content-disposition": f'attachment; filename="{name}"',
                "cascade-rows": str(len(listed)),
                "cascade-more": "true" if more else "false",
            }
            return _Reply(200, body, export.media_type, headers)

        return await self.answer(request, rows, covers_all, shape)

    async def task(self, request: Request) -> Response:
        return await self.answer(request, _task, covers_all="a task's executions")

    async def audit(self, request: Request) -> Response:
        """The audit's rows as JSON, or (``?format=csv|jsonl``) a file of them."""
        return await self.listed(request, _audit, "audit", _audit_rows, "the audit")

    async def logs(self, request: Request) -> Response:
        return await self.answer(request, _logs)


def _told_where(access: Access | None) -> bool:
    """Whether the asker is told where the history is: in a team's dashboard, admins over
    global only (a path or URL says much of the machine it is on); else everyone."""
    return access is None or access.may_administer() is None


def _since(request: Request, default: str | None) -> float | None:
    age = _age(request, "since", default)
    return None if age is None else time.time() - age


def _runs(history: History, request: Request, among: Among | None) -> dict[str, Any]:
    return {
        "runs": [run.to_json() for run in _picked(history, request, among, _limit(request, 100))]
    }


def _run_rows(
    history: History, request: Request, among: Among | None
) -> tuple[list[dict[str, Any]], bool]:
    """The runs to download, and whether more match: up to ``limit`` (:data:`MAX_EXPORT`
    by default; of a search of the logs, :data:`MAX_LIMIT`, each run a query of its own)."""
    most = MAX_LIMIT if _text(request, "logging") is not None else MAX_EXPORT
    limit = _limit(request, most, most)
    found = _picked(history, request, among, limit + 1)
    return [run.to_json() for run in found[:limit]], len(found) > limit


def _picked(
    history: History, request: Request, among: Among | None, limit: int
) -> list[RunSummary]:
    """The runs the filters pick (``cascade runs``'s, or ``logging``), at most ``limit``."""
    text = _text(request, "logging")
    if text is not None:  # the runs whose logs contain it, the latest line first
        ids = history.runs_logging(text, since=_since(request, None), limit=limit, among=among)
        details = (history.run(run_id, limit=1, among=among) for run_id in ids)
        return [detail.run for detail in details if detail is not None]
    return history.runs(
        since=_since(request, None),
        status=_text(request, "status"),
        project=_text(request, "project"),
        task=_text(request, "task"),
        source=_text(request, "source"),
        name=_text(request, "name"),
        trigger=_text(request, "trigger"),
        limit=limit,
        among=among,
    )


def _run(history: History, request: Request, among: Among | None) -> dict[str, Any] | None:
    run_id = _text(request, "id")
    if run_id is None:
        raise ValueError("give ?id=RUN_ID (or a prefix only one run has)")
    after = request.query_params.get("after")  # a task id: any text, empty included
    if after is None:
        from cascade.history import recorded_in

        wanted = checked_prefix(run_id)
        recorded = recorded_in(history, wanted, among)  # hidden runs are not there
        found = one_run(wanted, recorded.ids, more=recorded.capped)  # several: a ValueError, 400
    else:
        found = run_id  # a next page: of the run the first one found, by its whole id
    # a map's row opened: its items, a page at a time; else the run's tasks, each map's row
    # standing for its items (the first page counts them, per map, in "maps")
    item_of = _text(request, "map")
    first = after is None and item_of is None
    # a next page leaves the run's counts out: they cost the whole run, the first page has them
    detail = (
        None
        if found is None  # a run the reader may not see is one the history does not have
        else history.run(
            found,
            after=after,
            limit=RUN_PAGE,
            counts=first,
            among=among,
            items=item_of is not None,
            item_of=item_of,
        )
    )
    if detail is None:
        return None
    tasks = [
        {**task.to_json(), "name": task.task_name, "segments": segments(task.states)}
        for task in detail.tasks
    ]
    # the failed and held tasks, and those a decision ended: each with its attempts (error,
    # traceback, duration, the decision on its hold)
    failures = [_failure(t) for t in detail.tasks if t.state in _FAILURES or t.decisions]
    run = {**detail.run.to_json(), "tasks": tasks, "failures": failures}
    counts = detail.run.tasks if first else None
    page: dict[str, Any] = {"run": run, "counts": counts, "next_after": detail.next_after}
    if first:
        page["maps"] = maps = [entry.to_json() for entry in history.maps(detail.run.run_id)]
        if any(entry["counts"].get("FAILED") or entry["counts"].get("HELD") for entry in maps):
            # the failed and held items are not in the pages: their maps' rows stand for them
            failures += [
                _failure(t)
                for t in history.run_tasks(
                    detail.run.run_id, order="earliest", limit=RUN_PAGE, states=_FAILURES
                )
                if _ITEM.search(t.task_id)
            ]
        # a loop's row stands for its iterations as a map's for its items: counted in "loops"
        page["loops"] = loops = [entry.to_json() for entry in history.loops(detail.run.run_id)]
        looped = {
            entry["task_id"]
            for entry in loops
            if any(entry["counts"].get(state) for state in _FAILURES)
        }
        if looped:  # its failed and held iterations are not in the pages either
            failures += [
                _failure(t)
                for t in history.run_tasks(
                    detail.run.run_id, order="earliest", limit=RUN_PAGE, states=_FAILURES
                )
                if _ITERATION.search(t.task_id) and t.task_id.rpartition("@")[0] in looped
            ]
    return page


_FAILURES = ("FAILED", "HELD")


def _failure(task: TaskHistory) -> dict[str, Any]:
    """A failed or held task, or one a decision ended, with its attempts (error, traceback,
    duration, the decision on its hold)."""
    return {
        "task_id": task.task_id,
        "name": task.task_name,
        "error": task.error,
        "state": task.state,
        "attempt_list": [attempt.to_json() for attempt in task.attempt_list],
    }


def _logs(history: History, request: Request, among: Among | None) -> dict[str, Any] | None:
    """A page of a run's log lines (its whole id): ``task`` (an id, a name or a glob),
    ``level`` (a number, or a name such as ``warning``), ``after`` (the last line's ``id``),
    ``limit``; ``next_after``: the cursor of the next page (``null``: none yet); the first
    page (no ``after``) has the run's log ``batches`` too (``stored``, ``last_seq``, and
    ``missing``: lost whichever tasks' lines they held; ``null``: none). A run the reader
    may not see has none, as a run never recorded."""
    level_text = request.query_params.get("level") or "0"
    level = _LEVELS.get(level_text.upper()) if not level_text.isdigit() else int(level_text)
    if level is None:
        raise ValueError(f"level must be a number or one of {', '.join(_LEVELS).lower()}")
    after_text = request.query_params.get("after") or "0"
    if not after_text.isdigit():
        raise ValueError("after must be the id of a line (a whole number)")
    limit = _limit(request, MAX_LIMIT)
    # a run the reader may not see has no lines, as one never recorded: in the same query
    lines = history.log_lines(
        request.path_params["run_id"],
        task=_text(request, "task"),
        level=level,
        after=int(after_text),
        limit=limit,
        among=among,
    )
    next_after = lines[-1].id if len(lines) == limit else None
    page: dict[str, Any] = {"lines": [line.to_json() for line in lines], "next_after": next_after}
    if after_text == "0":  # the first page: the run's batches too, if the reader sees it
        run_id = request.path_params["run_id"]
        seen = among is None or bool(lines) or _visible(history, run_id, among)
        batches = history.log_batches(run_id) if seen else None
        page["batches"] = None if batches is None else batches.to_json()
    return page


def _visible(history: History, run_id: str, among: Among) -> bool:
    """Whether the history has the run ``run_id`` among the orgs and projects ``among``."""
    return history.run(run_id, limit=1, counts=False, among=among) is not None


def _tasks(history: History, request: Request, among: Among | None) -> dict[str, Any]:
    limit = _limit(request, MAX_LIMIT)
    found = history.tasks(since=_since(request, "7d"), name_glob=_text(request, "name"))
    # one row per task name: as many as the names engines sent, so cut, saying so
    return {"tasks": [stats.to_json() for stats in found[:limit]], "more": len(found) > limit}


def _task_rows(
    history: History, request: Request, among: Among | None
) -> tuple[list[dict[str, Any]], bool]:
    """The task names' statistics to download (up to ``limit``, :data:`MAX_EXPORT` by
    default), and whether there are more."""
    limit = _limit(request, MAX_EXPORT, MAX_EXPORT)
    found = history.tasks(since=_since(request, "7d"), name_glob=_text(request, "name"))
    return [stats.to_json() for stats in found[:limit]], len(found) > limit


def _task(history: History, request: Request, among: Among | None) -> dict[str, Any]:
    name = _text(request, "name")
    if name is None:
        raise ValueError("give ?name=TASK_NAME")
    points = history.executions(name, since=_since(request, "7d"), limit=_limit(request, 500))
    return {"name": name, "executions": [point.to_json() for point in points]}


def _audit(history: History, request: Request, among: Among | None) -> dict[str, Any]:
    found = history.audit(since=_since(request, "7d"), limit=_limit(request, 200))
    return {"events": [event.to_json() for event in found]}


def _audit_rows(
    history: History, request: Request, among: Among | None
) -> tuple[list[dict[str, Any]], bool]:
    """The audit's rows to download (up to ``limit``, :data:`MAX_EXPORT` by default, newest
    first), and whether there are more."""
    limit = _limit(request, MAX_EXPORT, MAX_EXPORT)
    found = history.audit(since=_since(request, "7d"), limit=limit + 1)
    return [event.to_json() for event in found[:limit]], len(found) > limit


def history_routes(
    history: History | HistorySource | None,
    holder: Callable[[Scope], str | None] = lambda _: None,
    team: Team | None = None,
) -> list[Route]:
    """The ``/api/history/...`` routes (GET) over ``history``; each 404s without one, and
    ``/api/history`` says whether there is one (and where, or why not). ``holder``: the name of
    the dashboard token a request carries (``None``: anonymous), whose queries come first
    (``_fair_share``). ``team``: a team's dashboard, whose readers see what their roles
    let them (``_team``)."""
    api = _HistoryApi(HistorySource.of(history), holder, team)
    return [
        Route("/api/history", api.status),
        Route("/api/history/runs", api.runs),
        Route("/api/history/run", api.run),
        Route("/api/history/tasks", api.tasks),
        Route("/api/history/task", api.task),
        Route("/api/history/audit", api.audit),
        Route("/api/history/runs/{run_id}/logs", api.logs),
    ]
