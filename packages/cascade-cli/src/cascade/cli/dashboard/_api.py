"""The dashboard's HTTP side: the page, its JSON API and its live stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cascade.interfaces import ConnectorError

from .._cancel import describe_reply
from .._context import UsageError
from .._control import validate_scope
from .._run_ids import Recorded, checked_prefix, is_full, recorded_in
from .._run_owner import owner_in
from ..access import Role
from ..metrics import CONTENT_TYPE
from ._access_log import AccessLog
from ._api_tokens import ApiTokenCheck, ApiTokens
from ._deltas import STREAM_PAGE, Follower
from ._guard import HostCheck, Refused, Tokens, allowed_hosts, read_json, refusal
from ._history_api import history_routes
from ._history_source import HistorySource
from ._hub import DashboardHub, constraint_messages
from ._log_backfill import LogBackfill
from ._log_window import LogWindow
from ._me import me_route
from ._model import MAX_RUNS_SHOWN
from ._pages import PAGED_PARAMS, Listing, View, covers, parse_view
from ._shapes import constraint_dict, engine_dict
from ._sign_in import SignIn, SignInPages
from ._streams import (
    KEEPALIVE,
    MAX_HOLDER_STREAMS,
    MAX_STREAMS,
    MAX_STREAMS_PER_CLIENT,
    STREAM_INTERVAL,
    Snapshots,
    StreamSlots,
    change_events,
    stream_events,
)
from ._team import Team
from ._token_api import token_routes

if TYPE_CHECKING:
    from cascade.history import History

    from ..access import Access, Among, Roles

__all__ = [
    "KEEPALIVE",
    "MAX_BODY",
    "MAX_HOLDER_STREAMS",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_CLIENT",
    "STREAM_INTERVAL",
    "create_app",
]

#: The largest control request body accepted, in bytes.
MAX_BODY = 16 * 1024


def _security_headers(form_action: list[str]) -> list[tuple[bytes, bytes]]:
    """The headers of every response; ``form_action``: where a form may post (none but a
    sign-in's sign-out form, which posts here and may end at the provider's)."""
    forms = " ".join(form_action) or "'none'"
    return [
        # Defence in depth: the page never builds HTML from data, and no script runs but ours.
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
         b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
         b"form-action " + forms.encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]  # fmt: skip


_BEARER = {"WWW-Authenticate": "Bearer"}
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

    def reader(self, scope: Scope) -> Access | JSONResponse | None:
        """In a team's dashboard, the access of the request's sender, or the refusal;
        ``None`` in any other (everyone reads)."""
        return self.team.reader(scope) if self.team is not None else None

    def shows_controls(self, access: Access | None) -> bool:
        """Whether the page of ``access`` (``None``: not a team's dashboard) shows controls:
        in a team's, to operators and admins only."""
        return self.controls if access is None else (access.role or 0) >= Role.OPERATOR

    def run_seen(self, run_id: str | None, among: Among | None) -> str | None:
        """``run_id`` when the reader may see that run, else ``None`` (as if unknown)."""
        if run_id is None or among is None:
            return run_id
        run = self.hub.model.open_run(run_id)
        return run_id if run is not None and covers(among, run) else None

    def authorized(self, request: Request) -> str | JSONResponse:
        """The name of the request's token (its controls are issued by it), or the refusal."""
        if self.tokens is None:
            return refusal(401, "read-only dashboard: start it with --token to enable controls",
                           **_BEARER)  # fmt: skip
        name = self.tokens.holder(request.scope)
        if name is None:
            return refusal(401, "missing or wrong bearer token", **_BEARER)
        return name

    async def metrics(self, request: Request) -> Response:
        """Prometheus's scrape: open, as every read of the dashboard is (see ``create_app``);
        in a team's, for those who see every project (its counts cover them all)."""
        if self.team is not None:
            access = self.team.reader(request.scope)
            if isinstance(access, JSONResponse):
                return access
            reason = access.may_see_everything("the metrics")
            if reason is not None:
                return self.team.refuse(access, "read", "/metrics", reason)
        return Response(self.hub.model.metrics.render(), media_type=CONTENT_TYPE)

    async def index(self, request: Request) -> Response:
        return FileResponse(_static_file("index.html"), headers={"cache-control": "no-store"})

    async def state(self, request: Request) -> Response:
        """The state; with any of :data:`PAGED_PARAMS`, a page of runs (and of engines, with
        ``engines_limit``) of those matching the filters, with counts and the next cursor."""
        params = request.query_params
        access = self.reader(request.scope)
        if isinstance(access, JSONResponse):
            return access
        among = access.among() if access is not None else None
        run_id = self.run_seen(params.get("run"), among)
        if run_id:  # in fleet mode, its events are read for a while (see FleetMode)
            self.hub.telemetry.touch(run_id)
        if PAGED_PARAMS.isdisjoint(params) and access is None:
            built = self.snapshots.get(run_id)
            return Response(built.body, media_type="application/json")
        # a fleet's engines a page at a time: thousands of them would be megabytes
        engines_limit = STREAM_PAGE if self.hub.telemetry.fleet else None
        try:
            view = parse_view(
                params, runs_limit=MAX_RUNS_SHOWN, engines_limit=engines_limit, among=among
            )
        except ValueError as exc:
            return refusal(400, str(exc))
        controls = self.shows_controls(access)
        return JSONResponse(self.page(view, run_id, params.get("task") or None, controls))

    def page(
        self, view: View, run_id: str | None, task: str | None = None, controls: bool = False
    ) -> dict[str, Any]:
        """``/api/state`` of one page of the lists (see :meth:`state`), with the open run's
        last log lines (of ``task``, or every task's) that fit in one stream event. A reader
        who may not see every project gets the engines without their summaries (they list
        every project's runs)."""
        model = self.hub.model
        bare = view.runs.among is not None
        runs = self.listing.run_page(view.runs)
        engines = self.listing.engine_page(view.engines)
        return {
            "version": model.version,
            "now": model.clock(),
            "engines": [engine_dict(engine, summary=not bare) for engine in engines.items],
            "engines_total": engines.total,
            "engines_matching": engines.matching,
            "engines_next": engines.next_after,
            "runs": [model.run_summary(run) for run in runs.items],
            "runs_total": runs.total,
            "runs_matching": runs.matching,
            "runs_next": runs.next_after,
            "constraints": [constraint_dict(t, c) for t, c in model.state.active_constraints()],
            **model.header(),
            "connection": self.hub.connection(),
            "controls": controls,
            "run": model.run_detail(run_id) if run_id else None,
            "logs": LogWindow(task).lines_now(model.logs, run_id) if run_id else None,
        }

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The live stream; a token holder's is never refused (see :class:`StreamSlots`).

        With ``since`` (a page's), the changes of the page's view (:class:`Follower`);
        without, the whole state whenever it changed, as scripts written before read it.
        """
        client = scope["client"][0] if scope.get("client") else "unknown"
        params = Request(scope, receive).query_params
        access = self.reader(scope)
        if isinstance(access, JSONResponse):
            await access(scope, receive, send)
            return
        if access is not None and "since" not in params:
            reason = "give since=0: a team member's stream is the changes of their view"
            await refusal(400, reason)(scope, receive, send)
            return
        try:
            follower = self.follower(params, access) if "since" in params else None
        except ValueError as exc:
            await refusal(400, str(exc))(scope, receive, send)
            return
        slot = self.slots.take(client, holder=self.holder(scope) is not None)
        if isinstance(slot, str):
            await refusal(503, slot, **{"Retry-After": "2"})(scope, receive, send)
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
            response = StreamingResponse(
                events,
                media_type="text/event-stream",
                headers={"cache-control": "no-store", "x-accel-buffering": "no"},
            )
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
            among=access.among() if access is not None else None,
        )

    def caller(self, request: Request) -> str | Access | JSONResponse:
        """Who a control request comes from: the name of its token, or in a team's dashboard
        the access of whoever signed in (a role is checked per control), or the refusal."""
        if self.team is not None:
            return self.team.reader(request.scope, "control")
        return self.authorized(request)

    def checked(
        self,
        request: Request,
        caller: str | Access,
        action: str,
        target: str,
        check: Callable[[Access], str | None],
    ) -> str | JSONResponse:
        """The name the control is issued by, once the team's roles allow it (else the
        refusal, audited)."""
        if isinstance(caller, str):
            return caller
        assert self.team is not None
        allowed = self.team.control(request.scope, action, target, check, caller)
        return allowed if isinstance(allowed, JSONResponse) else allowed.identity.name

    def audited(self, caller: str | Access, action: str, target: str) -> None:
        """Audit a control done by a team member."""
        if self.team is not None and not isinstance(caller, str):
            self.team.done(caller, action, target)

    async def post_constraints(self, request: Request) -> Response:
        caller = self.caller(request)
        if isinstance(caller, JSONResponse):
            return caller
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return refusal(415, "send the constraint as application/json")
        try:
            body = await read_json(request, MAX_BODY)
        except Refused as refused:
            return refusal(refused.status, refused.message)
        try:
            messages = constraint_messages(body)  # refused as the CLI would, before any check
        except (UsageError, UnicodeError) as exc:
            return refusal(400, str(exc))
        scope, kind = messages[0][1].scope, messages[0][1].type
        holder = self.checked(request, caller, kind, scope, lambda a: a.may_steer(scope))
        if not isinstance(holder, str):
            return holder
        try:
            published = await self.hub.apply_constraints(body, issued_by=holder)
        except (UsageError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except ConnectorError as exc:
            return refusal(503, str(exc))
        self.audited(caller, kind, scope)
        return JSONResponse({"published": published})

    async def delete_constraints(self, request: Request) -> Response:
        caller = self.caller(request)
        if isinstance(caller, JSONResponse):
            return caller
        scope = request.query_params.get("scope")
        if scope is None:
            return refusal(400, "give ?scope=global or ?scope=task:<glob>")
        try:
            validate_scope(scope)
        except UsageError as exc:
            return refusal(400, str(exc))
        holder = self.checked(request, caller, "resume", scope, lambda a: a.may_steer(scope))
        if not isinstance(holder, str):
            return holder
        try:
            cleared = await self.hub.clear(
                scope, request.query_params.get("type"), issued_by=holder
            )
        except (UsageError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except ConnectorError as exc:
            return refusal(503, str(exc))
        self.audited(caller, "resume", scope)
        return JSONResponse({"cleared": cleared})

    async def run_project(self, run_id: str) -> tuple[str | None, str | None] | Response:
        """The org and project of run ``run_id`` (a whole id) as this dashboard heard it or
        its history recorded it; ``(None, None)`` when neither knows."""
        run = self.hub.model.open_run(run_id)
        if run is not None:
            return run.org_id, run.project_id
        history = self.source.history
        if history is None:
            return None, None
        from cascade.history import HistoryError

        try:
            detail = await asyncio.to_thread(history.run, run_id, limit=0, counts=False)
        except HistoryError as exc:
            return refusal(503, str(exc))
        return (detail.run.org_id, detail.run.project_id) if detail else (None, None)

    async def recorded_owner(self, run_id: str) -> str | Response | None:
        """The source the history (if any) recorded the run ``run_id`` (a whole id) from,
        ``None`` when it has not, or the refusal when the history cannot answer."""
        history = self.source.history
        if history is None:
            return None
        from cascade.history import HistoryError

        try:
            return await asyncio.to_thread(owner_in, history, run_id)
        except HistoryError as exc:
            return refusal(503, str(exc))

    async def recorded_ids(self, run_id: str) -> Recorded | Response:
        """The runs in the history (if any) a prefix ``run_id`` may name (none for a whole
        id), or the refusal when the history cannot answer."""
        wanted = checked_prefix(run_id)
        history = self.source.history
        if history is None or is_full(wanted):
            return Recorded()
        from cascade.history import HistoryError

        try:
            return await asyncio.to_thread(recorded_in, history, wanted)
        except HistoryError as exc:
            return refusal(503, str(exc))

    async def cancel_run(self, request: Request) -> Response:
        caller = self.caller(request)
        if isinstance(caller, JSONResponse):
            return caller
        body = None
        if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
            request.headers
        ):
            if request.headers.get("content-type", "").split(";")[0].strip() != (
                "application/json"
            ):
                return refusal(415, "send the reason as application/json")
            try:
                body = await read_json(request, MAX_BODY)
            except Refused as refused:
                return refusal(refused.status, refused.message)
        run_id = request.path_params["run_id"]
        try:
            recorded = await self.recorded_ids(run_id)
            if not isinstance(recorded, Recorded):
                return recorded
            run_id = self.hub.run_id(run_id, recorded)
            project = await self.run_project(run_id) if self.team is not None else (None, None)
            if isinstance(project, Response):
                return project
            org_id, project_id = project
            holder = self.checked(request, caller, "cancel", f"run:{run_id}",
                                  lambda a: a.may_cancel(org_id, project_id))  # fmt: skip
            if not isinstance(holder, str):
                return holder
            owner = await self.recorded_owner(run_id)
            if isinstance(owner, Response):
                return owner
            answer = await self.hub.cancel(run_id, body, issued_by=holder, owner=owner)
        except (UsageError, UnicodeError) as exc:
            return refusal(400, str(exc))
        except LookupError as exc:
            return refusal(404, str(exc))
        except ConnectorError as exc:
            return refusal(503, str(exc))
        if answer.reply is None:
            return refusal(504, answer.unanswered(self.hub.timeout))
        reply = answer.reply
        self.audited(caller, "cancel", f"run:{run_id}")
        return JSONResponse(
            {
                "cancelled": msgspec.to_builtins(reply),
                "said": describe_reply(reply),
                "refused": answer.refused,
            }
        )


def create_app(
    hub: DashboardHub,
    *,
    token: str | Tokens | None,
    listen_host: str | None = None,
    allowed_host: Iterable[str] = (),
    max_streams: int = MAX_STREAMS,
    max_streams_per_client: int = MAX_STREAMS_PER_CLIENT,
    max_holder_streams: int = MAX_HOLDER_STREAMS,
    history: History | HistorySource | None = None,
    roles: Roles | None = None,
    sign_in: SignIn | None = None,
    access_log: AccessLog | None = None,
    api_tokens: History | None = None,
) -> Starlette:
    """The ASGI app of a dashboard on ``hub``; with ``token`` its controls are enabled.

    With ``roles`` it is a team's dashboard (``_team``): every read and control is of
    someone signed in (``sign_in``, or a named ``token``), and what each may see and do is
    what the roles file grants them; refusals are 403s, each a row of ``access_log``.
    Requests may carry a per-person API token (``Bearer cascade_...``) of ``api_tokens``
    (else of ``history``), and admins make and revoke them (``/api/tokens``; written to
    ``api_tokens``, a history opened for writing: ``_token_api``).

    Reading (the page, ``/api/state``, ``/api/stream``, ``/api/history/...``, and Prometheus's
    ``/metrics``: it shows counts and names the page shows anyway, and scrapers rarely carry a
    bearer token) is open; a
    control request must carry ``Authorization: Bearer <token>``: a header, which no other
    site can make a browser send. ``token`` is one secret (its controls are issued by
    ``hub.operator``) or :class:`Tokens`, each named. Requests are served only for a loopback
    ``Host``, ``listen_host`` and ``allowed_host``. With ``history`` (``--db``, or a
    :class:`HistorySource` such as the default one `cascade record` writes),
    ``/api/history/...`` reads it (see ``_history_api``), and an opened run's log lines
    from before it was opened come from it (``_log_backfill``).
    """
    source = HistorySource.of(history)
    hub.telemetry.backfill = LogBackfill(source)
    tokens = Tokens(((token.encode("utf-8"), hub.operator),)) if isinstance(token, str) else token
    team = Team(roles, sign_in, tokens, access_log) if roles is not None else None
    api = ApiTokens(api_tokens or source.history) if team is not None else None
    handlers = _Dashboard(
        hub,
        tokens,
        StreamSlots(max_streams, max_streams_per_client, max_holder_streams),
        source,
        team,
    )
    routes = [
        Route("/", handlers.index),
        Route("/api/state", handlers.state),
        Route("/metrics", handlers.metrics, methods=["GET"]),
        Route("/api/stream", _Asgi(handlers.stream), methods=["GET"]),
        Route("/api/constraints", handlers.post_constraints, methods=["POST"]),
        Route("/api/constraints", handlers.delete_constraints, methods=["DELETE"]),
        *history_routes(source, handlers.holder, team),
        Route("/api/runs/{run_id}/cancel", handlers.cancel_run, methods=["POST"]),
        me_route(sign_in, roles, tokens),
        *(token_routes(team, api) if team is not None and api is not None else ()),
        *(sign_in.routes() if sign_in is not None else ()),
        Mount("/static", StaticFiles(packages=[("cascade.cli.dashboard", "static")])),
    ]
    app = Starlette(routes=routes, middleware=sign_in.middleware() if sign_in else None)
    if api is not None:
        app.add_middleware(ApiTokenCheck, tokens=api, static=tokens)
    any_address = listen_host is not None and listen_host in _WILDCARDS
    allowed = allowed_hosts(listen_host, allowed_host)
    app.add_middleware(HostCheck, allowed=allowed, any_address=any_address)
    form_action = sign_in.form_action if isinstance(sign_in, SignInPages) else []
    # the outermost: on refusals too
    app.add_middleware(_SecurityHeaders, headers=_security_headers(form_action))
    return app


def _static_file(name: str) -> str:
    from importlib.resources import files

    return str(files("cascade.cli.dashboard") / "static" / name)
