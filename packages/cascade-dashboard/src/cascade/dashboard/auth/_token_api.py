"""``/api/tokens``: a team's admins make, list and revoke per-person API tokens.

Each takes ``admin`` over ``global`` (:meth:`~cascade.control.access.Access.may_administer`);
a refusal is a 403 with its reason and an access row, as every control's. Making and
revoking are audited when done. The secret of a token made is in the answer to its POST,
once: the history keeps its SHA-256 only.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cascade.reader import parse_age

from .._guard import Refused, read_json, refusal
from ._api_tokens import ApiTokens

if TYPE_CHECKING:
    from cascade.control.access import Access

    from ._team import Team

__all__ = ["token_routes"]

_MAX_BODY = 4 * 1024
_NO_STORE = {"cache-control": "no-store"}
_NO_HISTORY = "API tokens are kept in the history: start the dashboard with --db URL"


def _admin(access: Access) -> str | None:
    return access.may_administer()


def _asked(body: Any) -> tuple[str, str | None, float | None]:
    """The holder, note and expiry (epoch seconds) a POST asks for; ValueError saying what is
    wrong."""
    if not isinstance(body, dict):
        raise ValueError('send {"holder": NAME, "note": TEXT, "expires": AGE}')
    unknown = sorted(set(body) - {"holder", "note", "expires"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}: give holder, note, expires")
    holder, note, expires = body.get("holder"), body.get("note"), body.get("expires")
    if not isinstance(holder, str):
        raise ValueError("holder must be a person's name as the roles file names them")
    if note is not None and not isinstance(note, str):
        raise ValueError("note must be text")
    if expires is None:
        return holder, note, None
    if not isinstance(expires, str):
        raise ValueError("expires must be an age such as 90d or 24h")
    try:
        return holder, note, time.time() + parse_age(expires)
    except ValueError as exc:
        raise ValueError(f"expires: {exc}") from None


class _TokenApi:
    def __init__(self, team: Team, tokens: ApiTokens) -> None:
        self.team = team
        self.tokens = tokens

    async def create(self, request: Request) -> Response:
        access = self.team.control(request.scope, "token-create", "tokens", _admin)
        history = self.tokens.history
        if history is None:
            return refusal(503, _NO_HISTORY)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return refusal(415, "send the token's holder as application/json")
        try:
            holder, note, expires_at = _asked(await read_json(request, _MAX_BODY))
        except Refused as refused:
            return refusal(refused.status, refused.message)
        except ValueError as exc:
            return refusal(400, str(exc))
        from cascade.history import HistoryError

        try:
            made = await asyncio.to_thread(
                history.create_token,
                holder,
                created_by=access.identity.name,
                note=note,
                expires_at=expires_at,
            )
        except ValueError as exc:
            return refusal(400, str(exc))
        except HistoryError as exc:
            return refusal(503, str(exc))
        self.team.done(access, "token-create", f"token:{made.token.id}:{made.token.holder}")
        answer = {"token": made.token.to_json(), "secret": made.secret}
        return JSONResponse(answer, status_code=201, headers=_NO_STORE)

    async def list(self, request: Request) -> Response:
        access = self.team.reader(request.scope, "token-list")
        reason = access.may_administer()
        if reason is not None:
            self.team.refuse(access, "token-list", "tokens", reason)
        history = self.tokens.history
        if history is None:
            return refusal(503, _NO_HISTORY)
        from cascade.history import HistoryError

        try:
            found = await asyncio.to_thread(history.tokens)
        except HistoryError as exc:
            return refusal(503, str(exc))
        now = time.time()
        listed = [{**token.to_json(), "state": token.state(now)} for token in found]
        return JSONResponse({"tokens": listed}, headers=_NO_STORE)

    async def revoke(self, request: Request) -> Response:
        raw = request.path_params["token_id"]
        target = f"token:{raw}"[:80]
        access = self.team.control(request.scope, "token-revoke", target, _admin)
        if not raw.isdigit() or len(raw) > 18:
            return refusal(400, "a token's id is a whole number (cascade token list)")
        history = self.tokens.history
        if history is None:
            return refusal(503, _NO_HISTORY)
        from cascade.history import HistoryError

        try:
            revoked = await asyncio.to_thread(history.revoke_token, int(raw))
        except HistoryError as exc:
            return refusal(503, str(exc))
        if revoked is None:
            return refusal(404, f"no token {raw}")
        self.tokens.forget()
        self.team.done(access, "token-revoke", f"token:{revoked.id}:{revoked.holder}")
        return JSONResponse({"token": revoked.to_json()}, headers=_NO_STORE)


def token_routes(team: Team, tokens: ApiTokens) -> list[Route]:
    """``POST /api/tokens`` (``{"holder", "note", "expires"}``: 201 with the token and its
    ``secret``, shown this once), ``GET /api/tokens`` (every token, without secrets), and
    ``DELETE /api/tokens/{id}`` (revoked at once here, within :data:`~._api_tokens.CACHE_SECONDS`
    at other dashboards of the history): for admins over global only."""
    api = _TokenApi(team, tokens)
    return [
        Route("/api/tokens", api.create, methods=["POST"]),
        Route("/api/tokens", api.list, methods=["GET"]),
        Route("/api/tokens/{token_id}", api.revoke, methods=["DELETE"]),
    ]
