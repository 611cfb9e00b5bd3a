"""Sign-in and access: tokens, OpenID Connect, an auth proxy, sessions, a team's roles as the
page applies them, API tokens and the access audit."""

from ._access_history import sink_of
from ._access_log import AccessEvent, AccessLog
from ._api_tokens import ApiTokens

__all__ = ["AccessEvent", "AccessLog", "ApiTokens", "sink_of"]
