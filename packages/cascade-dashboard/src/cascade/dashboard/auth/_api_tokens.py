"""Per-person API tokens at a team's dashboard: ``Authorization: Bearer cascade_...``.

The history keeps the tokens (:meth:`cascade.history.History.create_token`); the dashboard
looks each one up by its SHA-256 in a worker thread (never on the event loop) and keeps the
answer :data:`CACHE_SECONDS` seconds, so a request costs no query while a revoke takes
effect within that. An active token's request is its holder's, with the holder's roles in
the roles file as they are now (``Identity(holder, "api-token")``: :func:`~._team.identify`);
an unknown, revoked or expired one is a 401.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from .._guard import Tokens, refusal

if TYPE_CHECKING:
    from cascade.history import ApiToken, History

__all__ = ["CACHE_SECONDS", "HOLDER_KEY", "ApiTokenCheck", "ApiTokens"]

CACHE_SECONDS = 5.0
"""How long a token's lookup is kept: a revoked token works at most this long after."""
HOLDER_KEY = "cascade.api_token_holder"
"""Where :class:`ApiTokenCheck` puts an active token's holder in the request's scope."""
_PREFIX = b"cascade_"
_CACHED = 4096  # lookups kept at most (unknown secrets too: a flood of them costs no queries)
_BEARER = {"WWW-Authenticate": "Bearer"}


def _bearer(scope: Scope) -> bytes | None:
    raw = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    scheme, _, given = raw.partition(b" ")
    given = given.strip()
    return given if scheme.lower() == b"bearer" and given.startswith(_PREFIX) else None


class ApiTokens:
    """The tokens of ``history`` (``None``: none accepted), looked up with a cache of
    ``ttl`` seconds (by ``clock``); each lookup of an active token notes its use when the
    history is writable (at most every ``ttl`` seconds per token). Expiry goes by ``wall``
    at every request, cached or not."""

    def __init__(
        self,
        history: History | None,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.ttl = ttl
        self.clock = clock
        self.wall = wall
        self._cache: dict[str, tuple[float, ApiToken | None]] = {}

    def forget(self) -> None:
        """Drop every cached lookup (this dashboard revoked a token: at once here)."""
        self._cache.clear()

    def _find(self, secret: str) -> ApiToken | None:
        assert self.history is not None
        token = self.history.find_token(secret)
        writable = self.history.mode == "write"
        if token is not None and writable and token.state(self.wall()) == "active":
            self.history.token_used(token.id)
        return token

    async def holder(self, secret: str) -> str | None:
        """The holder of the active token ``secret``, ``None`` when no active token has it.
        Raises :class:`~cascade.history.HistoryError` when the history cannot be read."""
        if self.history is None:
            return None
        key = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
        now = self.clock()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] >= self.ttl:
            token = await asyncio.to_thread(self._find, secret)
            if len(self._cache) >= _CACHED:
                self._cache.clear()
            self._cache[key] = (now, token)
        else:
            token = cached[1]
        if token is None or token.state(self.wall()) != "active":
            return None
        return token.holder


class ApiTokenCheck:
    """Resolves the API token a request carries (one of ``tokens``, ``cascade_``...) before
    the app sees it: its holder goes in the scope (:data:`HOLDER_KEY`), and a token that is
    unknown, revoked or expired is a 401. A ``--token`` secret (``static``) passes as it is."""

    def __init__(self, app: ASGIApp, tokens: ApiTokens, static: Tokens | None) -> None:
        self.app = app
        self.tokens = tokens
        self.static = static

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = _bearer(scope) if scope["type"] == "http" else None
        if given is None or (self.static is not None and self.static.holder(scope) is not None):
            await self.app(scope, receive, send)
            return
        from cascade.history import HistoryError

        try:
            holder = await self.tokens.holder(given.decode("latin-1"))
        except HistoryError as exc:
            await refusal(503, f"API tokens cannot be checked now: {exc}")(scope, receive, send)
            return
        if holder is None:
            why = "unknown, revoked or expired API token"
            if self.tokens.history is None:
                why = "API tokens need the dashboard's history (--db URL): it has none"
            await refusal(401, why, **_BEARER)(scope, receive, send)
            return
        scope[HOLDER_KEY] = holder
        await self.app(scope, receive, send)
