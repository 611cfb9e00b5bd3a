"""Signing in with OpenID Connect: the authorization code flow with PKCE, by Authlib's
Starlette client, and a signed session cookie of who signed in.

``/auth/login?next=/path`` sends the browser to the provider (a state, a nonce and an S256
code challenge with it); ``/auth/callback`` takes the code back, Authlib verifies the ID
token (its signature by the provider's JWKS, the issuer, the audience, the expiry, the
nonce), and the session keeps the person's name (by what the provider vouches for:
``_oidc_names``), groups, when they signed in and a session id, never a token. The session is
believed while the dashboard knows it as live (``_sessions``): ``POST /auth/logout`` ends it
for good, whatever copy of the cookie is left (and, where the provider has one, sends the
browser to its ``end_session_endpoint``); an admin can revoke it (``/api/sessions``).

Signing in costs no connection per request (``_oidc_provider``), and each address has a small
budget of sign-in requests (``_flood``): a flood is answered 429.
"""

from __future__ import annotations

import html
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuthError
from joserfc.errors import JoseError
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from cascade.control.access import Identity

from ._flood import Budget
from ._oidc_names import NotNamed, name_of
from ._oidc_provider import ProviderUnavailable, provider_client
from ._sessions import Sessions

__all__ = ["COOKIE", "LOGIN_PATH", "SESSION_MAX_AGE", "OidcSignIn"]

_log = logging.getLogger("cascade.dashboard")

#: The session cookie's name.
COOKIE = "cascade_session"
#: How long a session lasts by default, in seconds (a working day).
SESSION_MAX_AGE = 8 * 3600
#: Where the page sends people to sign in.
LOGIN_PATH = "/auth/login"
_CALLBACK = "/auth/callback"
_USER = "cascade_user"
_NEXT = "cascade_next"
_MAX_NEXT = 2048
_MAX_CLAIM = 256
_MAX_GROUPS = 256
_UNAVAILABLE = (httpx2.HTTPError, AuthlibBaseError, ProviderUnavailable, ValueError, KeyError)


def _url(value: str, what: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http:// or https:// URL, not {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must have no ?query or #fragment: {value!r}")
    return value.strip().rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class OidcSignIn:
    """Sign-in with an OpenID Connect provider at ``issuer`` (its metadata at
    ``<issuer>/.well-known/openid-configuration``), as the client ``client_id``.

    ``public_url``: the dashboard's address as browsers see it; the provider must know
    ``<public_url>/auth/callback`` as a redirect URI; the client authenticates with
    ``client_secret`` (HTTP Basic). ``session_secret`` signs the session cookie. A person's name
    is the ID token's ``email`` where its ``email_verified`` is true, or with another
    ``name_claim`` (such as ``sub``), that claim as ``<issuer>#<value>``; a token without it
    signs nobody in (403, saying why). Their groups are its ``groups_claim`` (a list of names,
    or one). ``budget``: the sign-in requests each address may make (429 beyond). With
    ``post_logout_url``, signing out at the provider comes back there (the provider must
    know it).
    """

    login_path = LOGIN_PATH

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        public_url: str,
        session_secret: str,
        *,
        name_claim: str = "email",
        groups_claim: str = "groups",
        scope: str = "openid email profile",
        session_max_age: int = SESSION_MAX_AGE,
        post_logout_url: str | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.issuer = _url(issuer, "the OIDC issuer")
        self.public_url = _url(public_url, "the public URL")
        self.post_logout_url = (
            _url(post_logout_url, "the post-logout URL") if post_logout_url else None
        )
        if "openid" not in scope.split():
            raise ValueError(f"the scope {scope!r} lacks openid: no ID token would come back")
        if not client_id.strip():
            raise ValueError("the OIDC client id is empty")
        if not client_secret:
            raise ValueError("the OIDC client secret is empty")
        if len(session_secret) < 16:
            raise ValueError("the session secret is too short: give at least 16 characters")
        if session_max_age <= 0:
            raise ValueError("the session's max age must be positive")
        if not name_claim.strip() or len(name_claim) > 64 or not name_claim.isprintable():
            raise ValueError(f"the name claim {name_claim!r} is not a claim's name")
        self.name_claim = name_claim.strip()
        self.groups_claim = groups_claim
        self.session_secret = session_secret
        self.session_max_age = session_max_age
        self.secure = self.public_url.startswith("https://")
        self.client: Any = provider_client(self.issuer, client_id.strip(), client_secret, scope)
        self.sessions = Sessions(session_max_age)
        """The live sessions (:meth:`Sessions.attach` keeps them in a history too)."""
        self.budget = budget or Budget()

    @property
    def redirect_uri(self) -> str:
        """The URI to register at the provider: ``<public_url>/auth/callback``."""
        return self.public_url + _CALLBACK

    @property
    def form_action(self) -> list[str]:
        """Where the page's sign-out form may end up: here, and the issuer's origin (its
        ``end_session_endpoint``), for the content-security-policy's ``form-action``."""
        return ["'self'", _origin(self.issuer)]

    @staticmethod
    def next_path(value: str | None) -> str:
        """The local path ``value`` names for after signing in (``/`` for none); ValueError
        when it is not one, so that no link can send a person elsewhere (an open redirect)."""
        if value is None or value == "":
            return "/"
        if len(value) > _MAX_NEXT:
            raise ValueError(f"next is longer than {_MAX_NEXT} characters")
        parts = urlsplit(value)
        if (
            not value.startswith("/")
            or value.startswith("//")
            or "\\" in value
            or parts.scheme
            or parts.netloc
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
        ):
            raise ValueError("next must be a path on this dashboard, such as /?run=ID")
        return value

    def routes(self) -> list[BaseRoute]:
        """``/auth/login``, ``/auth/callback`` and ``/auth/logout`` (POST only)."""
        return [
            Route(LOGIN_PATH, self.login, methods=["GET"]),
            Route(_CALLBACK, self.callback, methods=["GET"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
        ]

    def middleware(self) -> list[Middleware]:
        """The session cookie: signed (itsdangerous), HttpOnly, SameSite=Lax, Secure when the
        public URL is https, for ``session_max_age`` seconds."""
        return [
            Middleware(
                SessionMiddleware,
                secret_key=self.session_secret,
                session_cookie=COOKIE,
                max_age=self.session_max_age,
                same_site="lax",
                https_only=self.secure,
            )
        ]

    def identity(self, scope: Scope) -> Identity | None:
        """Who the session cookie names, while their session lasts."""
        user = self._user(scope)
        if user is None:
            return None
        return Identity(user["name"], "oidc", frozenset(user["groups"]), user["claim"])

    def about(self, scope: Scope) -> dict[str, Any]:
        """What ``/api/me`` says of the session beyond the identity: which claim named the
        person, when they signed in, and where to sign out."""
        user = self._user(scope)
        if user is None:
            return {}
        return {"claim": user["claim"], "signed_in_at": user["at"], "sign_out": "/auth/logout"}

    def _user(self, scope: Scope) -> dict[str, Any] | None:
        session = scope.get("session")
        user = session.get(_USER) if isinstance(session, dict) else None
        if not isinstance(user, dict):
            return None
        at = user.get("at")
        # the cookie's own age is checked by its signature; this bounds a session kept fresh
        if not isinstance(at, (int, float)) or time.time() - at > self.session_max_age:
            return None
        if not self.sessions.live(user.get("sid")):  # signed out, revoked, or not this one's
            return None
        return user

    async def login(self, request: Request) -> Response:
        """To the provider's sign-in, then back to ``next`` (a local path)."""
        flood = self.budget.refusal(request)
        if flood is not None:
            return flood
        try:
            next_path = self.next_path(request.query_params.get("next"))
        except ValueError as exc:
            return _page(400, "Cannot sign in", str(exc))
        request.session[_NEXT] = next_path
        try:
            url = await self.client.authorization(request, self.redirect_uri)
        except _UNAVAILABLE as exc:
            _log.warning("the OpenID provider %s did not answer: %s", self.issuer, exc)
            said = f"the OpenID provider at {self.issuer} did not answer: {_said(exc)}"
            return _page(502, "Cannot sign in", said)
        return RedirectResponse(url, status_code=302)

    async def callback(self, request: Request) -> Response:
        """The provider's answer: the person signed in and sent on, or a page saying why not."""
        flood = self.budget.refusal(request)
        if flood is not None:
            return flood
        if "state" not in request.query_params and "error" not in request.query_params:
            return _page(400, "Sign-in refused", "this page is for the provider's answer only")
        try:
            token = await self.client.authorize_access_token(
                request, claims_options={"iss": {"essential": True, "values": [self.issuer]}}
            )
        except OAuthError as exc:
            if exc.error == "mismatching_state":
                return _page(
                    400,
                    "Sign-in refused",
                    "the sign-in's state does not match this browser's (an old, "
                    "reused or forged link): sign in again",
                )
            return _page(401, "Sign-in refused", f"the OpenID provider said: {_said(exc)}")
        except JoseError as exc:
            _log.warning("refused an ID token from %s: %s", self.issuer, exc)
            return _page(
                401, "Sign-in refused", f"the provider's ID token was not accepted: {_said(exc)}"
            )
        except _UNAVAILABLE as exc:
            _log.warning("signing in at %s failed: %s", self.issuer, exc)
            return _page(
                502, "Cannot sign in", f"the OpenID provider at {self.issuer} failed: {_said(exc)}"
            )
        claims = token.get("userinfo")
        if not claims:
            return _page(401, "Sign-in refused", "the provider sent no ID token")
        try:
            name = name_of(claims, self.name_claim, self.issuer)
        except NotNamed as exc:
            _log.warning("refused a sign-in at %s: %s", self.issuer, exc)
            return _page(403, "Sign-in refused", str(exc))
        try:
            groups = self._groups(claims)
        except ValueError as exc:
            return _page(401, "Sign-in refused", str(exc))
        next_path = request.session.get(_NEXT)
        request.session.clear()
        request.session[_USER] = {
            "name": name,
            "claim": self.name_claim,
            "groups": groups,
            "at": int(time.time()),
            "sid": await self.sessions.start(name, self.name_claim),
        }
        try:
            target = self.next_path(next_path if isinstance(next_path, str) else None)
        except ValueError:
            target = "/"
        return RedirectResponse(target, status_code=303)

    def _groups(self, claims: dict[str, Any]) -> list[str]:
        value = claims.get(self.groups_claim)
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"the ID token's {self.groups_claim} is not a list of names")
        if len(values) > _MAX_GROUPS:
            raise ValueError(f"the ID token names more than {_MAX_GROUPS} groups")
        return sorted({v.strip() for v in values if v.strip() and len(v) <= _MAX_CLAIM})

    async def logout(self, request: Request) -> Response:
        """The session ended for good (a copy of its cookie signs nobody in); then to the
        provider's ``end_session_endpoint``, if it has one on the issuer's origin, else to the
        page."""
        user = self._user(request.scope)
        if user is not None:
            await self.sessions.end(user["name"], session_id=user["sid"])
        request.session.clear()
        try:
            metadata = await self.client.load_server_metadata()
        except _UNAVAILABLE as exc:
            _log.warning("the OpenID provider %s did not answer: %s", self.issuer, exc)
            metadata = {}
        end = metadata.get("end_session_endpoint")
        if not isinstance(end, str) or _origin(end) != _origin(self.issuer):
            return RedirectResponse("/", status_code=303)
        params = {"client_id": self.client.client_id}
        if self.post_logout_url:
            params["post_logout_redirect_uri"] = self.post_logout_url
        url = str(httpx2.URL(end, params=params))
        return RedirectResponse(url, status_code=303)


def _said(exc: BaseException) -> str:
    if isinstance(exc, OAuthError):
        text = exc.error or "an error"
        if exc.description:
            text += f" ({exc.description})"
        return text[:300]
    return (str(exc) or type(exc).__name__)[:300]


def _page(status: int, title: str, message: str) -> HTMLResponse:
    """A page saying what went wrong, with the way back; every part escaped."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f'<p><a href="{LOGIN_PATH}">Sign in again</a> · <a href="/">the dashboard</a></p>'
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})
