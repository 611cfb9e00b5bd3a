"""``/api/sessions``: a team's admins list the live sign-in sessions and revoke them (one, or
every one of a person). Each takes ``admin`` over ``global``, as ``/api/tokens`` does; a
refusal is a 403 with its reason and an access row, a revocation an allowed row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cascade.control.access import Access

from .._guard import refusal
from ._sessions import Sessions

if TYPE_CHECKING:
    from ._sign_in import SignIn
    from ._team import Team

__all__ = ["session_routes"]

_NO_STORE = {"cache-control": "no-store"}
_MAX_WHO = 256


class _SessionApi:
    def __init__(self, team: Team, sessions: Sessions) -> None:
        self.team = team
        self.sessions = sessions

    async def list(self, request: Request) -> Response:
        access = self.team.reader(request.scope, "session-list")
        reason = access.may_administer()
        if reason is not None:
            self.team.refuse(access, "session-list", "sessions", reason)
        who = request.query_params.get("who")
        listed = [s.to_json() for s in self.sessions.listed() if who is None or s.who == who]
        return JSONResponse({"sessions": listed}, headers=_NO_STORE)

    async def revoke(self, request: Request) -> Response:
        handle = request.path_params.get("handle")
        who = request.query_params.get("who")
        target = f"session:{handle}" if handle is not None else f"sessions:{who}"
        access = self.team.control(
            request.scope, "session-revoke", target[:300], Access.may_administer
        )
        if handle is not None and not (len(handle) == 32 and handle.isalnum()):
            return refusal(400, "a session's handle is 32 hex digits (GET /api/sessions)")
        if handle is None and (not who or len(who) > _MAX_WHO):
            return refusal(400, "give a session's handle, or ?who=NAME for all of a person's")
        ended = await self.sessions.end(access.identity.name, handle=handle, who=who)
        if handle is not None and not ended:
            return refusal(404, f"no live session {handle}")
        self.team.done(access, "session-revoke", target[:300])
        return JSONResponse({"revoked": [s.to_json() for s in ended]}, headers=_NO_STORE)


def session_routes(team: Team, sign_in: SignIn | None) -> list[Route]:
    """``GET /api/sessions`` (``?who=NAME``: theirs only), ``DELETE /api/sessions/{handle}``
    and ``DELETE /api/sessions?who=NAME`` (every live one of theirs): for admins over global,
    where the sign-in keeps sessions (OpenID Connect); none otherwise."""
    sessions = getattr(sign_in, "sessions", None)
    if not isinstance(sessions, Sessions):
        return []
    api = _SessionApi(team, sessions)
    return [
        Route("/api/sessions", api.list, methods=["GET"]),
        Route("/api/sessions", api.revoke, methods=["DELETE"]),
        Route("/api/sessions/{handle}", api.revoke, methods=["DELETE"]),
    ]
