"""The Cascade dashboard: a live web page of runs, tasks, engines and constraints, with
controls (through :mod:`cascade.control`), the history, and a team's sign-in.

`cascade dashboard` serves it (``pip install 'cascade-cli[dashboard]'``); from Python::

    await serve_dashboard(DashboardSettings(connector=lambda: MqttConnector("broker")))
"""

from typing import TYPE_CHECKING

from ._app._api import create_app
from ._app._control_bodies import constraint_messages
from ._app._controls import MAX_BODY
from ._app._errors import SettingsError
from ._app._guard import Tokens
from ._app._listen import is_loopback
from ._app._serve import serve_dashboard
from ._app._settings import DashboardSettings
from ._auth._access_history import sink_of
from ._auth._access_log import AccessEvent, AccessLog
from ._auth._proxy import ProxySignIn, trusted_networks
from ._auth._sign_in import SignIn, SignInPages
from ._history._history_api import MAX_LIMIT, RUN_PAGE
from ._history._history_source import HistorySource
from ._live._deltas import STREAM_INTERVAL, Follower
from ._live._fair_share import Claimant, HistoryReaders, StreamSlots
from ._live._hub import DashboardHub
from ._live._model import DashboardModel
from ._live._timelines import Segment

if TYPE_CHECKING:
    from ._auth._oidc import OidcSignIn

__all__ = [
    "MAX_BODY",
    "MAX_LIMIT",
    "RUN_PAGE",
    "STREAM_INTERVAL",
    "AccessEvent",
    "AccessLog",
    "Claimant",
    "DashboardSettings",
    "DashboardHub",
    "DashboardModel",
    "Follower",
    "HistoryReaders",
    "HistorySource",
    "OidcSignIn",
    "ProxySignIn",
    "Segment",
    "SettingsError",
    "SignIn",
    "SignInPages",
    "StreamSlots",
    "Tokens",
    "constraint_messages",
    "create_app",
    "is_loopback",
    "serve_dashboard",
    "sink_of",
    "trusted_networks",
]


def __getattr__(name: str) -> object:
    # Authlib is imported only by a dashboard that signs people in with OpenID Connect
    if name == "OidcSignIn":
        from ._auth._oidc import OidcSignIn

        return OidcSignIn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
