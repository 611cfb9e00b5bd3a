"""How a person signs in to a team's dashboard: the seam every way of signing in fills.

A :class:`SignIn` (OpenID Connect, a trusted proxy's header) adds its routes and its
middleware to the app and names who a request comes from; the roles file
(:mod:`cascade.cli.access`) then says what that identity may see and do.
"""

from __future__ import annotations

from typing import Protocol

from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Scope

from ..access import Identity

__all__ = ["SignIn"]


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
