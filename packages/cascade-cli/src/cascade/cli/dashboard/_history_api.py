"""The dashboard's history (``cascade dashboard --db URL``): JSON endpoints over a ``History``.

Each query runs in a worker thread (the event loop keeps serving the live page), at most
:data:`READERS` at once; the parameters are those of `cascade runs`, `run`, `tasks` and `audit`.
A database that cannot be read answers 503 with its one line, a bad parameter 400, and a
dashboard started without ``--db`` 404 on every one of them. Everything is JSON: the page shows
each string as text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._run_ids import checked_prefix, one_run, recorded_in
from .._view_options import parse_age
from .._views import FINISHED_STATES
from ._guard import refusal

if TYPE_CHECKING:
    from cascade.history import History, StateChange

__all__ = ["MAX_LIMIT", "READERS", "history_routes", "segments"]

MAX_LIMIT = 1_000
"""The most rows one request returns."""
READERS = 4
"""History queries running at once; the others wait their turn."""
_NO_HISTORY = "no history here: start the dashboard with --db URL"


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
    except typer.BadParameter as exc:
        raise ValueError(f"{name}: {exc.message}") from None


def _limit(request: Request, default: int) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _text(request: Request, name: str) -> str | None:
    """A text parameter; empty means not given."""
    return request.query_params.get(name) or None


class _HistoryApi:
    def __init__(self, history: History | None) -> None:
        self.history = history
        self.slots: asyncio.Semaphore | None = None

    async def answer(self, request: Request, job: Callable[[History, Request], Any]) -> Response:
        """``job(history, request)`` in a worker thread, as JSON; its errors as refusals."""
        from cascade.history import HistoryError

        history = self.history
        if history is None:
            return refusal(404, _NO_HISTORY)
        if self.slots is None:
            self.slots = asyncio.Semaphore(READERS)
        try:
            async with self.slots:
                value = await asyncio.to_thread(job, history, request)
        except HistoryError as exc:
            return refusal(503, str(exc))
        except ValueError as exc:
            return refusal(400, str(exc))
        if value is None:
            return refusal(404, "no such run in the history")
        return JSONResponse(value, headers={"cache-control": "no-store"})

    async def status(self, request: Request) -> Response:
        """Whether this dashboard has a history: the page asks before it asks for any."""
        return JSONResponse({"history": self.history is not None})

    async def runs(self, request: Request) -> Response:
        return await self.answer(request, _runs)

    async def run(self, request: Request) -> Response:
        return await self.answer(request, _run)

    async def tasks(self, request: Request) -> Response:
        return await self.answer(request, _tasks)

    async def task(self, request: Request) -> Response:
        return await self.answer(request, _task)

    async def audit(self, request: Request) -> Response:
        return await self.answer(request, _audit)


def _since(request: Request, default: str | None) -> float | None:
    age = _age(request, "since", default)
    return None if age is None else time.time() - age


def _runs(history: History, request: Request) -> dict[str, Any]:
    found = history.runs(
        since=_since(request, None),
        status=_text(request, "status"),
        project=_text(request, "project"),
        task=_text(request, "task"),
        source=_text(request, "source"),
        limit=_limit(request, 100),
    )
    return {"runs": [run.to_json() for run in found]}


def _run(history: History, request: Request) -> dict[str, Any] | None:
    run_id = _text(request, "id")
    if run_id is None:
        raise ValueError("give ?id=RUN_ID (or a prefix only one run has)")
    wanted = checked_prefix(run_id)
    recorded = recorded_in(history, wanted)
    found = one_run(wanted, recorded.ids, more=recorded.capped)  # several: a ValueError, 400
    detail = None if found is None else history.run(found)
    if detail is None:
        return None
    tasks = [
        {**task.to_json(), "name": task.task_name, "segments": segments(task.states)}
        for task in detail.tasks
    ]
    failures = [
        {"task_id": t.task_id, "name": t.task_name, "error": t.error}
        for t in detail.tasks
        if t.state == "FAILED"
    ]
    return {"run": {**detail.run.to_json(), "tasks": tasks, "failures": failures}}


def _tasks(history: History, request: Request) -> dict[str, Any]:
    found = history.tasks(since=_since(request, "7d"), name_glob=_text(request, "name"))
    return {"tasks": [stats.to_json() for stats in found]}


def _task(history: History, request: Request) -> dict[str, Any]:
    name = _text(request, "name")
    if name is None:
        raise ValueError("give ?name=TASK_NAME")
    points = history.executions(name, since=_since(request, "7d"), limit=_limit(request, 500))
    return {"name": name, "executions": [point.to_json() for point in points]}


def _audit(history: History, request: Request) -> dict[str, Any]:
    found = history.audit(since=_since(request, "7d"), limit=_limit(request, 200))
    return {"events": [event.to_json() for event in found]}


def history_routes(history: History | None) -> list[Route]:
    """The ``/api/history/...`` routes (GET) over ``history``; each 404s without one, and
    ``/api/history`` says whether there is one."""
    api = _HistoryApi(history)
    return [
        Route("/api/history", api.status),
        Route("/api/history/runs", api.runs),
        Route("/api/history/run", api.run),
        Route("/api/history/tasks", api.tasks),
        Route("/api/history/task", api.task),
        Route("/api/history/audit", api.audit),
    ]
