"""The Cascade dashboard: a live web page of runs, tasks, engines and constraints, with
controls (through :mod:`cascade.control`), the history, and a team's sign-in.

Its rooms: :mod:`.app` (the ASGI app, its server and settings, and the controls),
:mod:`.live` (the hub, its model, the runs' listing, fleet mode, the pages' streams),
:mod:`.history` (the page's history API) and :mod:`.auth` (sign-in, tokens, sessions, roles,
the audit); under them all, ``_guard`` (the guards every request passes).
`cascade dashboard` serves it (``pip install 'cascade-cli[dashboard]'``); from Python::

    await serve_dashboard(DashboardSettings(connector=lambda: MqttConnector("broker")))
"""

from typing import TYPE_CHECKING

from ._errors import SettingsError
from ._guard import Tokens
from ._history_source import HistorySource
from .app._api import create_app
from .app._listen import is_loopback
from .app._notify_settings import Notifications
from .app._serve import serve_dashboard
from .app._settings import DashboardSettings
from .auth._proxy import ProxySignIn, trusted_networks
from .auth._sign_in import SignIn
from .live._hub import DashboardHub

if TYPE_CHECKING:
    from .auth._oidc import OidcSignIn

__all__ = [
    "DashboardHub",
    "DashboardSettings",
    "HistorySource",
    "Notifications",
    "OidcSignIn",
    "ProxySignIn",
    "SettingsError",
    "SignIn",
    "Tokens",
    "create_app",
    "is_loopback",
    "serve_dashboard",
    "trusted_networks",
]


def __getattr__(name: str) -> object:
    # Authlib is imported only by a dashboard that signs people in with OpenID Connect
    if name == "OidcSignIn":
        from .auth._oidc import OidcSignIn

        return OidcSignIn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
