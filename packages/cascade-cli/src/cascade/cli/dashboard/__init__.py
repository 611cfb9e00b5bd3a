"""`cascade dashboard`: a live web page of runs, tasks, engines and constraints, with controls.

Needs the ``dashboard`` extra: ``pip install 'cascade-cli[dashboard]'``.
"""

from ._access_log import AccessEvent, AccessLog
from ._api import MAX_BODY, create_app
from ._deltas import Follower
from ._guard import Tokens
from ._history_api import MAX_LIMIT, RUN_PAGE
from ._history_source import HistorySource
from ._hub import DashboardHub, constraint_messages
from ._model import DashboardModel, Segment
from ._serve import serve_dashboard
from ._sign_in import SignIn
from ._streams import STREAM_INTERVAL

__all__ = [
    "MAX_BODY",
    "MAX_LIMIT",
    "RUN_PAGE",
    "STREAM_INTERVAL",
    "AccessEvent",
    "AccessLog",
    "DashboardHub",
    "DashboardModel",
    "Follower",
    "HistorySource",
    "Segment",
    "SignIn",
    "Tokens",
    "constraint_messages",
    "create_app",
    "serve_dashboard",
]
