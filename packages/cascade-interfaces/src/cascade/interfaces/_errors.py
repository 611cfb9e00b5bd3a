"""Errors shared by every Cascade package."""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectorError",
    "FlushTimeoutError",
    "InvalidIdError",
    "InvalidMessageError",
    "InvalidTopicError",
]


class ConnectorError(Exception):
    """Base class of errors raised by a connector; backends translate their own to these."""


class ConnectError(ConnectorError):
    """The broker could not be reached, or it refused the connection.

    ``host`` and ``port`` name the broker; ``reason`` says why, in words a user can act on.
    """

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"cannot connect to MQTT broker at {host}:{port}: {reason}")


class FlushTimeoutError(ConnectorError):
    """``flush()`` ran out of time before the broker had everything published so far."""


class InvalidTopicError(ValueError):
    """A topic name or topic filter breaks the MQTT rules."""


class InvalidIdError(InvalidTopicError):
    """A source, org or project id (or a topic prefix) that cannot stand in a Cascade topic.

    ``field`` names the parameter (``source_id``, ``org_id``, ...) and ``env``
    the environment variable it was read from, if any. A ``ValueError``, like
    every :class:`InvalidTopicError`.
    """

    def __init__(self, message: str, field: str, env: str | None = None) -> None:
        self.field = field
        self.env = env
        super().__init__(message)


class InvalidMessageError(ValueError):
    """An incoming payload does not follow the wire protocol.

    ``path`` locates the offending field (``$.params.limit``; ``$`` for the whole
    payload) and ``reason`` says what is wrong with it.
    """

    def __init__(self, reason: str, path: str = "$") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason} - at `{path}`" if path != "$" else reason)
