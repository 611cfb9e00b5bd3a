"""How a person signs in to a team's dashboard: the seam every way of signing in fills.

A :class:`SignIn` (OpenID Connect, a trusted proxy's header) adds its routes and its
middleware to the app and names who a request comes from; the roles file
(:mod:`cascade.control.access`) then says what that identity may see and do.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Scope

from cascade.control.access import Identity

__all__ = ["SignIn", "SignInPages"]


class SignIn(Protocol):
    """A way of signing in to the dashboard."""

    def routes(self) -> list[BaseRoute]:
        """Its pages (e.g. ``/auth/login``, ``/auth/callback``, ``/auth/logout``)."""
        ...

    def middleware(self) -> list[Middleware]:
        """What must wrap the app for it (e.g. the session cookie's), innermost last."""
        ...

    def identity(self, scope: Scope) -> Identity | None:
        """Who the request of ``scope`` comes from, ``None`` when nobody signed in."""
        ...


@runtime_checkable
class SignInPages(SignIn, Protocol):
    """A way of signing in through pages of the dashboard's own (OpenID Connect), where the
    page sends a person who is not signed in."""

    #: The page that signs a person in (``?next=/path`` for where to go after).
    login_path: str
    #: The content-security-policy's ``form-action`` sources its sign-out form needs.
    form_action: list[str]

    def about(self, scope: Scope) -> dict[str, Any]:
        """What ``/api/me`` says of the request's session beyond its identity."""
        ...
