"""A team's dashboard (``--roles``): who each request is, and what the roles file lets them
see and do. Every refusal is a 403 with its reason and a row of the access audit.

Who: a ``--token``'s name (``token``), an API token's holder (``api-token``), else the
:class:`~._sign_in.SignIn`'s (OpenID Connect, a trusted proxy). Controls from a browser
session must come from the dashboard's own page: a request another site's page made
(``Sec-Fetch-Site``, else ``Origin``) is refused, so a session cookie cannot be ridden
(bearer tokens cannot be: no other site can make a browser send them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from starlette.types import Scope

from cascade.control.access import Access, Identity, Roles

from .._guard import AccessRefused, Tokens
from ._access_log import AccessLog
from ._api_tokens import HOLDER_KEY
from ._sign_in import SignIn

__all__ = ["Team", "identify"]

_SIGN_IN = "not signed in: sign in at /auth/login"


def _header(scope: Scope, name: bytes) -> str | None:
    raw = next((v for k, v in scope["headers"] if k == name), None)
    return raw.decode("latin-1") if raw is not None else None


def identify(tokens: Tokens | None, sign_in: SignIn | None, scope: Scope) -> Identity | None:
    """Who the request of ``scope`` comes from: the holder of the bearer token it carries
    (a script's request carries no session), a ``--token``'s (``token``) or an API token's
    (``api-token``: :class:`~._api_tokens.ApiTokenCheck` looked it up before), else whoever
    ``sign_in`` says; ``None``: nobody signed in."""
    name = tokens.holder(scope) if tokens is not None else None
    if name is not None:
        return Identity(name, "token")
    holder = scope.get(HOLDER_KEY)
    if isinstance(holder, str):
        return Identity(holder, "api-token")
    return sign_in.identity(scope) if sign_in is not None else None


class Team:
    """The roles file, the ways of signing in, and the access audit of one dashboard."""

    def __init__(
        self,
        roles: Roles,
        sign_in: SignIn | None = None,
        tokens: Tokens | None = None,
        audit: AccessLog | None = None,
    ) -> None:
        self.roles = roles
        self.sign_in = sign_in
        self.tokens = tokens
        self.audit = audit or AccessLog()

    def identity(self, scope: Scope) -> Identity | None:
        """Who the request comes from (``None``: nobody signed in; see :func:`identify`)."""
        return identify(self.tokens, self.sign_in, scope)

    def access(self, scope: Scope) -> Access | None:
        """The request's access, ``None`` when nobody signed in."""
        identity = self.identity(scope)
        return None if identity is None else Access.of(self.roles, identity)

    def reader(self, scope: Scope, what: str = "read") -> Access:
        """The access of someone with a role; else :class:`AccessRefused` (401: nobody signed
        in; 403: no role, audited)."""
        access = self.access(scope)
        if access is None:
            raise AccessRefused(401, _SIGN_IN)
        if access.role is None:
            self.refuse(
                access,
                what,
                scope.get("path", ""),
                f"{access.identity.name} has no role on this dashboard",
            )
        return access

    def control(
        self,
        scope: Scope,
        action: str,
        target: str,
        check: Callable[[Access], str | None],
        access: Access | None = None,
    ) -> Access:
        """The access of someone ``check`` allows ``action`` on ``target``; else
        :class:`AccessRefused` (audited when someone was signed in). ``access``: the
        request's, if already known. Once the control is done, :meth:`done` audits it."""
        access = access or self.reader(scope, action)
        reason = check(access)
        if reason is None and access.identity.via in ("oidc", "proxy"):
            reason = _cross_site(scope)
        if reason is not None:
            self.refuse(access, action, target, reason)
        return access

    def done(self, access: Access, action: str, target: str, said: str | None = None) -> None:
        """Audit a control ``access`` was allowed and that succeeded (``said``: what came of
        it, a decision's outcome and the reason given)."""
        self.audit.add(access.identity, action, target, "allowed", said)

    def refuse(self, access: Access, action: str, target: str, reason: str) -> NoReturn:
        """Refuse with 403 and ``reason`` (:class:`AccessRefused`), its row in the access
        audit."""
        self.audit.add(access.identity, action, target, "refused", reason)
        raise AccessRefused(403, reason)


def _cross_site(scope: Scope) -> str | None:
    """Why a control from a browser session looks made by another site's page, or ``None``."""
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None:
        if fetch_site in ("same-origin", "none"):
            return None
        return f"a control from a {fetch_site} page is refused: use the dashboard's own page"
    origin = _header(scope, b"origin")
    if origin is None:
        return None  # not a browser's cross-site request: they send one or the other
    host = _header(scope, b"host") or ""
    _, _, origin_host = origin.partition("://")
    if origin_host != host:
        return "a control from another origin is refused: use the dashboard's own page"
    return None
