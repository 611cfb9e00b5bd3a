"""The dashboard's HTTP side: the page, its JSON API and its live stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cascade.interfaces import ConnectorError

from .._context import UsageError
from ._hub import DashboardHub

__all__ = ["MAX_BODY", "MAX_STREAMS", "STREAM_INTERVAL", "create_app"]

#: The stream sends at most one update per STREAM_INTERVAL seconds, however fast events come,
#: and one at least every KEEPALIVE seconds (so ages and the connection state stay current).
STREAM_INTERVAL = 0.25
KEEPALIVE = 2.0
#: The largest control request body accepted, in bytes.
MAX_BODY = 16 * 1024
#: Live streams served at once; more are refused with 503 (each costs a task and a snapshot).
MAX_STREAMS = 100

_HEADERS = [
    # Defence in depth: the page never builds HTML from data, and no script runs but ours.
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]  # fmt: skip


class _SecurityHeaders:
    """Adds the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def create_app(
    hub: DashboardHub, *, token: str | None, max_streams: int = MAX_STREAMS
) -> Starlette:
    """The ASGI app of a dashboard on ``hub``; with ``token`` its controls are enabled.

    Reading (the page, ``/api/state``, ``/api/stream``) is open; a control request must carry
    ``Authorization: Bearer <token>``: a header, which no other site can make a browser send.
    """

    def unauthorized(request: Request) -> JSONResponse | None:
        if token is None:
            return _error(401, "read-only dashboard: start it with --token to enable controls",
                          **{"WWW-Authenticate": "Bearer"})  # fmt: skip
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        return None

    def state(run_id: str | None) -> dict[str, Any]:
        snapshot = hub.model.snapshot()
        snapshot["connection"] = hub.connection()
        snapshot["controls"] = token is not None
        snapshot["run"] = hub.model.run_detail(run_id) if run_id else None
        return snapshot

    async def index(request: Request) -> Response:
        return FileResponse(_static_file("index.html"), headers={"cache-control": "no-store"})

    async def get_state(request: Request) -> Response:
        return JSONResponse(state(request.query_params.get("run")))

    async def events(run_id: str | None) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        seen = -1
        while not hub.closing.is_set():
            await hub.wait_change(seen, KEEPALIVE)
            if hub.closing.is_set():
                return
            seen = hub.model.version
            yield f"event: state\ndata: {json.dumps(state(run_id))}\n\n"
            await asyncio.sleep(STREAM_INTERVAL)  # coalescing: at most 1/interval per s

    class Stream:
        """The live stream, counting the open ones however each ends."""

        open = 0

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if self.open >= max_streams:
                refused = _error(503, f"too many live streams open (at most {max_streams})")
                await refused(scope, receive, send)
                return
            run_id = Request(scope, receive).query_params.get("run")
            response = StreamingResponse(
                events(run_id),
                media_type="text/event-stream",
                headers={"cache-control": "no-store", "x-accel-buffering": "no"},
            )
            self.open += 1
            try:
                await response(scope, receive, send)
            finally:
                self.open -= 1

    async def post_constraints(request: Request) -> Response:
        denied = unauthorized(request)
        if denied is not None:
            return denied
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the constraint as application/json")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "the body is not JSON")
        try:
            published = await hub.apply_constraints(body)
        except UsageError as exc:
            return _error(400, str(exc))
        except ConnectorError as exc:
            return _error(503, str(exc))
        return JSONResponse({"published": published})

    async def delete_constraints(request: Request) -> Response:
        denied = unauthorized(request)
        if denied is not None:
            return denied
        scope = request.query_params.get("scope")
        if scope is None:
            return _error(400, "give ?scope=global or ?scope=task:<glob>")
        try:
            cleared = await hub.clear(scope, request.query_params.get("type"))
        except UsageError as exc:
            return _error(400, str(exc))
        except ConnectorError as exc:
            return _error(503, str(exc))
        return JSONResponse({"cleared": cleared})

    routes = [
        Route("/", index),
        Route("/api/state", get_state),
        Route("/api/stream", Stream(), methods=["GET"]),
        Route("/api/constraints", post_constraints, methods=["POST"]),
        Route("/api/constraints", delete_constraints, methods=["DELETE"]),
        Mount("/static", StaticFiles(packages=[("cascade.cli.dashboard", "static")])),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_SecurityHeaders)
    return app


def _static_file(name: str) -> str:
    from importlib.resources import files

    return str(files("cascade.cli.dashboard") / "static" / name)
