"""``/api/me``: who the dashboard takes a request's sender for, and what the roles file lets
them do; the page asks it to show a name and a sign-out button, or a sign-in link."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cascade.control.access import Access, Roles

from .._guard import Tokens
from ._sign_in import SignIn, SignInPages
from ._team import identify

__all__ = ["me_route"]


class _Me:
    def __init__(self, sign_in: SignIn | None, roles: Roles | None, tokens: Tokens | None) -> None:
        self.sign_in = sign_in
        self.roles = roles
        self.tokens = tokens

    async def answer(self, request: Request) -> Response:
        identity = identify(self.tokens, self.sign_in, request.scope)
        pages = self.sign_in if isinstance(self.sign_in, SignInPages) else None
        if identity is None:
            answer: dict[str, Any] = {"error": "not signed in"}
            if pages is not None:
                answer["sign_in"] = pages.login_path
            return JSONResponse(answer, status_code=401, headers={"cache-control": "no-store"})
        body: dict[str, Any] = {
            "name": identity.name,
            "via": identity.via,
            "groups": sorted(identity.groups),
        }
        if pages is not None and identity.via != "token":
            body.update(pages.about(request.scope))
        if self.roles is not None:
            body.update(Access.of(self.roles, identity).describe())
        return JSONResponse(body, headers={"cache-control": "no-store"})


def me_route(sign_in: SignIn | None, roles: Roles | None, tokens: Tokens | None) -> Route:
    """``GET /api/me``: 200 with the sender's ``name``, ``via`` and ``groups`` (with
    ``roles``, their role and grants too; with an OIDC session, the claim that named them),
    or 401 ``{"error": "not signed in", "sign_in": "/auth/login"}`` (``sign_in`` where the
    dashboard has a sign-in page)."""
    return Route("/api/me", _Me(sign_in, roles, tokens).answer, methods=["GET"])
