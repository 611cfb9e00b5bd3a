"""The dashboard's HTTP side: the page, its JSON API and its live stream (Server-Sent Events)."""

from __future__ import annotations

import functools
import gzip
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cascade.control import ControlError
from cascade.control.access import Role
from cascade.control.run_ids import is_full
from cascade.metrics import CONTENT_TYPE

from .._guard import (
    AccessRefused,
    HostCheck,
    Refused,
    Tokens,
    allowed_hosts,
    answer_refused,
    refusal,
)
from .._history_source import HistorySource
from ..auth._access_log import AccessLog
from ..auth._api_tokens import ApiTokenCheck, ApiTokens
from ..auth._decide_scope import decidable
from ..auth._me import me_route
from ..auth._session_api import session_routes
from ..auth._sign_in import SignInPages
from ..auth._team import Team
from ..auth._token_api import token_routes
from ..history._history_api import history_routes
from ..live._deltas import STREAM_INTERVAL, STREAM_PAGE, Follower
from ..live._fair_share import RETRY_AFTER, claimant
from ..live._hub import DashboardHub
from ..live._listing import PAGED_PARAMS, Listing, View, cursor, parse_problems, parse_view
from ..live._log_backfill import LogBackfill
from ..live._log_window import LogWindow
from ..live._model import MAX_HELD_MATCHED, MAX_RUNS_SHOWN, Decidable, HeldFilter
from ..live._problems import problems_page
from ..live._shapes import constraint_dict, engine_dict
from ..live._streams import (
    KEEPALIVE,
    MAX_HOLDER_STREAMS,
    MAX_STREAMS,
    MAX_STREAMS_PER_CLIENT,
    Snapshots,
    StreamSlots,
    change_events,
    stream_events,
)
from ..live._visible_runs import HistoryUnreadable, find_run, visible_id
from ._controls import Controls
from ._decide import decide_task
from ._gzip_stream import accepts_gzip, gzipped
from ._notify_settings import Notifications, notify_routes
from ._rerun import rerun_run
from ._run_graph import run_graph
from ._schedules import list_schedules
from ._settings import DashboardSettings
from ._start import list_workflows, start_workflow

if TYPE_CHECKING:
    from cascade.control.access import Access
    from cascade.history import History

__all__ = [
    "KEEPALIVE",
    "MAX_HOLDER_STREAMS",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_CLIENT",
    "STREAM_INTERVAL",
    "create_app",
]


def _security_headers(form_action: list[str]) -> list[tuple[bytes, bytes]]:
    """The headers of every response; ``form_action``: where a form may post (none but a
    sign-in's sign-out form, which posts here and may end at the provider's)."""
    forms = " ".join(form_action) or "'none'"
    return [
        # Defence in depth: the page never builds HTML from data, and no script runs but ours.
        (
            b"content-security-policy",
            b"default-src 'self'; img-src 'self' data:; "
            b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            b"form-action " + forms.encode("ascii"),
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class _SecurityHeaders:
    """Adds ``headers`` (:func:`_security_headers`) to every response."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, with_headers)


class _Asgi:
    """An ASGI endpoint from a bound method (a plain method would be taken for a handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class _Dashboard:
    """The handlers of one dashboard app, around its hub, its token and its stream slots."""

    def __init__(
        self,
        hub: DashboardHub,
        tokens: Tokens | None,
        slots: StreamSlots,
        history: HistorySource,
        team: Team | None = None,
    ) -> None:
        self.hub = hub
        self.source = history
        self.tokens = tokens
        self.team = team
        self.slots = slots
        self.controls = tokens is not None or team is not None
        self.snapshots = Snapshots(hub, controls=self.controls)
        self.listing = Listing(hub.model)

    def holder(self, scope: Scope) -> str | None:
        """The name of the token a request carries, if it carries one of ours (in a team's
        dashboard, of whoever signed in)."""
        if self.team is not None:
            identity = self.team.identity(scope)
            return identity.name if identity is not None else None
        return self.tokens.holder(scope) if self.tokens is not None else None

    def reader(self, scope: Scope) -> Access | None:
        """In a team's dashboard, the access of the request's sender (else
        :class:`~._guard.AccessRefused`); ``None`` in any other (everyone reads)."""
        return self.team.reader(scope) if self.team is not None else None

    def shows_controls(self, access: Access | None) -> bool:
        """Whether the page of ``access`` (``None``: not a team's dashboard) shows controls:
        in a team's, to operators and admins only."""
        return self.controls if access is None else (access.role or 0) >= Role.OPERATOR

    async def metrics(self, request: Request) -> Response:
        """Prometheus's scrape: open, as every read of the dashboard is (see ``create_app``);
        in a team's, for those who see every project (its counts cover them all)."""
        if self.team is not None:
            access = self.team.reader(request.scope)
            reason = access.may_see_everything("the metrics")
            if reason is not None:
                self.team.refuse(access, "read", "/metrics", reason)
        return Response(self.hub.model.metrics.render(), media_type=CONTENT_TYPE)

    async def index(self, request: Request) -> Response:
        """The page, at ``/`` and at each of its places (``/runs/{run_id}``, ...: static/places.js),
        with the first state of the view its address asks for (:meth:`first_state`), so that its
        first paint shows what the dashboard holds: gzipped when the browser takes it (an open
        run's tasks can be megabytes, as the stream's first event)."""
        named = await self.whole_run_address(request)
        if named is not None:
            return RedirectResponse(named, status_code=302)
        page = _page()
        state = self.first_state(request)
        if state is not None:
            page = page.replace(_FIRST_STATE, _FIRST_STATE.replace(b"null", state), 1)
        headers = {"cache-control": "no-store", "vary": "accept-encoding"}
        if len(page) > _GZIP_FROM and accepts_gzip(request.scope):
            page, headers["content-encoding"] = gzip.compress(page, 6), "gzip"
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    async def whole_run_address(self, request: Request) -> str | None:
        """Where ``/runs/{prefix}...`` (the short id a table shows, or any prefix one run the
        asker may see has, live or recorded) is under the run's whole id; ``None`` when the
        address names a whole id, or no one run (the page then says what it holds of it)."""
        given = request.path_params.get("run_id")
        if not given or is_full(given):
            return None
        try:
            access = self.reader(request.scope)
            among = access.among() if access is not None else None
            found = await find_run(self.hub.model, self.source.history, given, among)
        except (AccessRefused, ControlError, HistoryUnreadable):
            return None
        if found is None:
            return None
        path = request.url.path.replace(f"/runs/{given}", f"/runs/{found.run_id}", 1)
        query = request.url.query
        return f"{path}?{query}" if query else path

    def first_state(self, request: Request) -> bytes | None:
        """The first event a page at this address would get from its stream (its view: the
        open run of ``/runs/{run_id}`` or ``?run=``, its task, ``?rows=``), as JSON safe in a
        ``<script type="application/json">``; ``None`` for a reader of a team's dashboard who
        may read nothing (nobody signed in, no role: the page says so, as before)."""
        access = None
        if self.team is not None:
            access = self.team.access(request.scope)
            if access is None or access.role is None:
                return None
        params = request.query_params
        rows = str(_rows(params.get("rows")))
        asked = {"since": "0", "limit": rows, "engines_limit": rows}
        # the runs' filters (/runs?status=...)
        for name in ("project", "status", "engine", "name", "trigger"):
            if params.get(name):
                asked[name] = params[name]
        run_id = request.path_params.get("run_id") or params.get("run")
        if run_id:
            asked["run"] = run_id
            task = request.path_params.get("task")
            if task:
                asked["task"] = task
        try:
            event = self.follower(asked, access).next_event()
        except ValueError:
            return None
        if event is None:
            return None
        data = event.split(b"\ndata: ", 1)[1].rstrip(b"\n")
        # nothing in it can end the script element: every <, > and & is a JSON escape
        return data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")

    async def state(self, request: Request) -> Response:
        """The state; with any of :data:`PAGED_PARAMS`, a page of runs (and of engines, with
        ``engines_limit``) of those matching the filters, with counts and the next cursor."""
        params = request.query_params
        access = self.reader(request.scope)
        among = access.among() if access is not None else None
        run_id = visible_id(self.hub.model, params.get("run"), among)
        if run_id:  # in fleet mode, its events are read for a while (see FleetMode)
            self.hub.telemetry.touch(run_id)
        if PAGED_PARAMS.isdisjoint(params) and access is None:
            built = self.snapshots.get(run_id)
            return Response(built.body, media_type="application/json")
        try:  # engines a page at a time: a fleet's thousands would be megabytes
            view = parse_view(
                params, runs_limit=MAX_RUNS_SHOWN, engines_limit=STREAM_PAGE, among=among
            )
        except ValueError as exc:
            return refusal(400, str(exc))
        controls = self.shows_controls(access)
        held_decidable = decidable(access, self.controls)
        return JSONResponse(
            self.page(view, run_id, params.get("task") or None, controls, held_decidable)
        )

    async def held(self, request: Request) -> Response:
        """``GET /api/held?run_id=&task=&project=&error=``: the held tasks the filter picks
        (:class:`~..live._model.HeldFilter`) that the asker may see, the longest held first,
        at most :data:`~..live._model.MAX_HELD_MATCHED` of them (``total``: how many match,
        ``limit``: that bound), each with ``decide`` as in ``/api/state``'s ``held``: what
        Decisions' bulk decision lists before it decides, each through the task's own
        ``/decide``. Read by whoever may read ``/api/state``."""
        access = self.reader(request.scope)
        try:
            picks = HeldFilter.of(request.query_params)
        except ValueError as exc:
            return refusal(400, str(exc))
        among = access.among() if access is not None else None
        listed = self.hub.model.held.listed(
            among, decidable(access, self.controls), MAX_HELD_MATCHED, picks
        )
        return JSONResponse({**listed, "limit": MAX_HELD_MATCHED})

    async def problems(self, request: Request) -> Response:
        """``/api/problems/{kind}``: the sources the list ``kind`` (``missed``, ``refused``,
        ``conflicts``, ``silent``) names, a page at a time by source (``limit``, ``after``: the page
        before's ``next_after``): what ``/api/state`` summarises with the worst few. Read by
        whoever may read ``/api/state``."""
        self.reader(request.scope)
        try:
            limit, after = parse_problems(request.query_params)
            page = problems_page(self.hub.model.state, request.path_params["kind"], limit, after)
        except ValueError as exc:
            return refusal(400, str(exc))
        answer = page.as_dict(request.path_params["kind"])
        if page.next_after is not None:
            answer["next_after"] = cursor([page.next_after])
        return JSONResponse(answer)

    def page(
        self,
        view: View,
        run_id: str | None,
        task: str | None = None,
        controls: bool = False,
        held_decidable: Decidable | None = None,
    ) -> dict[str, Any]:
        """``/api/state`` of one page of the lists (see :meth:`state`), with the open run's
        last log lines (of ``task``, or every task's) that fit in one stream event. A reader
        who may not see every project gets the engines without their summaries (they list
        every project's runs), and without the fleet's totals (they count them all)."""
        model = self.hub.model
        bare = view.runs.among is not None
        runs = self.listing.run_page(view.runs)
        engines = self.listing.engine_page(view.engines)
        return {
            "version": model.version,
            "now": model.clock(),
            "engines": [
                engine_dict(
                    engine, summary=not bare, lost=None if bare else model.lost_with(engine.source)
                )
                for engine in engines.items
            ],
            "engines_total": engines.total,
            "engines_matching": engines.matching,
            "engines_next": engines.next_after,
            "runs": [self.listing.row(run) for run in runs.items],
            "runs_total": runs.total,
            "runs_matching": runs.matching,
            "runs_next": runs.next_after,
            "constraints": [constraint_dict(t, c) for t, c in model.state.active_constraints()],
            **model.header(),
            **({"fleet": None} if bare else {}),  # its totals count every project's runs
            "connection": self.hub.connection(),
            "controls": controls,
            "held": model.held.listed(view.runs.among, held_decidable),
            "run": model.run_detail(run_id) if run_id else None,
            "logs": LogWindow(task).lines_now(model.logs, run_id) if run_id else None,
        }

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The live stream, within its sender's share (see :class:`StreamSlots`).

        With ``since`` (a page's), the changes of the page's view (:class:`Follower`);
        without, the whole state whenever it changed, as scripts written before read it.
        """
        params = Request(scope, receive).query_params
        access = self.reader(scope)
        if access is not None and "since" not in params:
            reason = "give since=0: a team member's stream is the changes of their view"
            await refusal(400, reason)(scope, receive, send)
            return
        try:
            follower = self.follower(params, access) if "since" in params else None
        except ValueError as exc:
            await refusal(400, str(exc))(scope, receive, send)
            return
        slot = self.slots.take(claimant(scope, access, self.holder))
        if isinstance(slot, Refused):
            retry = {"Retry-After": RETRY_AFTER}
            await refusal(slot.status, slot.message, **retry)(scope, receive, send)
            return
        run_id = follower.run_id if follower is not None else params.get("run")
        if run_id:
            self.hub.telemetry.open(run_id)
        try:
            events: AsyncIterator[bytes] = (
                change_events(self.hub, follower, slot)
                if follower is not None
                else stream_events(self.hub, self.snapshots, params.get("run"), slot)
            )
            headers = {
                "cache-control": "no-store",
                "x-accel-buffering": "no",
                "vary": "accept-encoding",
            }
            if accepts_gzip(scope):
                events, headers["content-encoding"] = gzipped(events), "gzip"
            response = StreamingResponse(events, media_type="text/event-stream", headers=headers)
            await response(scope, receive, send)
        finally:
            if run_id:
                self.hub.telemetry.close(run_id)
            self.slots.give_back(slot)

    def follower(self, params: Mapping[str, str], access: Access | None = None) -> Follower:
        """The follower of the view a change stream's parameters ask for, of the runs
        ``access`` may see (when given); ``ValueError`` saying what is wrong with one."""
        return Follower.asked(
            self.hub,
            params,
            self.listing,
            controls=self.shows_controls(access),
            decidable=decidable(access, self.controls),
            among=access.among() if access is not None else None,
        )


def create_app(
    hub: DashboardHub,
    settings: DashboardSettings | None = None,
    *,
    access_log: AccessLog | None = None,
    api_tokens: History | None = None,
    notifications: Notifications | None = None,
) -> Starlette:
    """The ASGI app of a dashboard on ``hub``, as ``settings`` say (:class:`DashboardSettings`:
    its ``connector``, ``demo`` and printing are :func:`serve_dashboard`'s only); with a
    ``token`` its controls are enabled.

    With ``roles`` it is a team's dashboard (``_team``): every read and control is of
    someone signed in (``sign_in``, or a named ``token``), and what each may see and do is
    what the roles file grants them; refusals are 403s, each a row of ``access_log``.
    Requests may carry a per-person API token (``Bearer cascade_...``) of ``api_tokens``
    (else of ``history``), and admins make and revoke them (``/api/tokens``; written to
    ``api_tokens``, a history opened for writing: ``_token_api``). Its admins add and remove
    webhooks (``/api/settings/webhooks``) that ``notifications`` runs (``_notify_settings``;
    ``None``: no history keeps them, and the settings say so).

    Reading (the page, ``/api/state``, ``/api/stream``, ``/api/history/...``, and Prometheus's
    ``/metrics``: it shows counts and names the page shows anyway, and scrapers rarely carry a
    bearer token) is open; a
    control request must carry ``Authorization: Bearer <token>``: a header, which no other
    site can make a browser send. ``token`` is one secret (its controls are issued by
    ``hub.operator``) or :class:`Tokens`, each named. Requests are served only for a loopback
    ``Host``, ``host`` and ``allowed_hosts``. With ``history`` (``--db``, or a
    :class:`HistorySource` such as the default one `cascade record` writes),
    ``/api/history/...`` reads it (see ``_history_api``), and an opened run's log lines
    from before it was opened come from it (``_log_backfill``).
    """
    settings = settings or DashboardSettings()
    token, roles, sign_in = settings.token, settings.roles, settings.sign_in
    source = HistorySource.of(settings.history)
    hub.telemetry.backfill = LogBackfill(source)
    tokens = Tokens(((token.encode("utf-8"), hub.operator),)) if isinstance(token, str) else token
    team = Team(roles, sign_in, tokens, access_log) if roles is not None else None
    api = ApiTokens(api_tokens or source.history) if team is not None else None
    controls = Controls(hub, tokens, source, team)
    handlers = _Dashboard(
        hub,
        tokens,
        StreamSlots(
            settings.max_streams, settings.max_streams_per_client, settings.max_holder_streams
        ),
        source,
        team,
    )
    routes = [
        Route("/", handlers.index),
        # the page's places (static/places.js): the page, opened there
        *(Route(f"/{place}", handlers.index, methods=["GET"]) for place in _PLACES),
        Route("/runs/{run_id}", handlers.index, methods=["GET"]),
        Route("/runs/{run_id}/tasks/{task:path}", handlers.index, methods=["GET"]),
        Route("/history/runs/{recorded}", _recorded_run, methods=["GET"]),
        Route("/history/tasks/{name:path}", handlers.index, methods=["GET"]),
        Route("/api/state", handlers.state),
        Route("/api/problems/{kind}", handlers.problems, methods=["GET"]),
        Route("/api/held", handlers.held, methods=["GET"]),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/api/stream", _Asgi(handlers.stream), methods=["GET"]),
        Route("/api/constraints", controls.post_constraints, methods=["POST"]),
        Route("/api/constraints", controls.delete_constraints, methods=["DELETE"]),
        *history_routes(source, handlers.holder, team),
        Route("/api/runs/{run_id}/cancel", controls.cancel_run, methods=["POST"]),
        Route("/api/runs/{run_id}/rerun", functools.partial(rerun_run, controls), methods=["POST"]),
        Route("/api/runs/{run_id}/graph", functools.partial(run_graph, controls), methods=["GET"]),
        Route(
            "/api/runs/{run_id}/tasks/{task}/decide",
            functools.partial(decide_task, controls),
            methods=["POST"],
        ),
        Route("/api/workflows", functools.partial(list_workflows, controls), methods=["GET"]),
        Route("/api/schedules", functools.partial(list_schedules, controls), methods=["GET"]),
        Route(
            "/api/workflows/{name}/start",
            functools.partial(start_workflow, controls),
            methods=["POST"],
        ),
        me_route(sign_in, roles, tokens),
        *(token_routes(team, api) if team is not None and api is not None else ()),
        *(session_routes(team, sign_in) if team is not None else ()),
        *(notify_routes(team, notifications) if team is not None else ()),
        *(sign_in.routes() if sign_in is not None else ()),
        Mount("/static", StaticFiles(packages=[("cascade.dashboard", "static")])),
    ]
    app = Starlette(
        routes=routes,
        middleware=sign_in.middleware() if sign_in else None,
        exception_handlers={AccessRefused: answer_refused},
    )
    if api is not None:
        app.add_middleware(ApiTokenCheck, tokens=api, static=tokens)
    any_address = settings.host is not None and settings.host in _WILDCARDS
    allowed = allowed_hosts(settings.host, settings.allowed_hosts)
    app.add_middleware(HostCheck, allowed=allowed, any_address=any_address)
    form_action = sign_in.form_action if isinstance(sign_in, SignInPages) else []
    # the outermost: on refusals too
    app.add_middleware(_SecurityHeaders, headers=_security_headers(form_action))
    return app


_PLACES = (
    "runs",
    "workflows",
    "decisions",
    "engines",
    "constraints",
    "audit",
    "settings",
    "tasks",
    "problems",
)
"""The page's places with an address of their own (``/runs``, ...: static/places.js); ``/`` is
Runs too, ``/runs/{run_id}`` a run's page."""


async def _recorded_run(request: Request) -> Response:
    """``/history/runs/{id}``, a recorded run's address before each run had one page: that page
    (``/runs/{id}``, live or recorded alike), with the query kept."""
    path = "/runs/" + quote(request.path_params["recorded"], safe="")
    query = request.url.query
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=301)


_FIRST_STATE = b'<script id="first-state" type="application/json">null</script>'
_GZIP_FROM = 16_384  # bytes of a page worth compressing
_ROWS = 25  # rows a page of runs and of engines, as static/live.js reads ?rows=


def _rows(text: str | None) -> int:
    """The rows of a page the page's ``?rows=`` asks for: 1 to 500, else 25 (as live.js)."""
    try:
        rows = int(text or "")
    except ValueError:
        return _ROWS
    return min(500, max(1, rows)) if rows else _ROWS


@functools.cache
def _page() -> bytes:
    from importlib.resources import files

    page = (files("cascade.dashboard") / "static" / "index.html").read_bytes()
    assert _FIRST_STATE in page, "index.html has lost its first-state element"
    return page
