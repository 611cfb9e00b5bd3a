"""Errors shared by every Cascade package."""

from __future__ import annotations

__all__ = [
    "CascadeError",
    "ConnectError",
    "ConnectorError",
    "FlushTimeoutError",
    "InvalidIdError",
    "InvalidMessageError",
    "InvalidTopicError",
]


class CascadeError(Exception):
    """The root of every error Cascade raises on purpose.

    Every package's errors derive from it (a connector's, the runtime's, the history's, the
    steering's, the dashboard's, the CLI's), most through an error of their own package
    (:class:`ConnectorError`, ``CascadeRuntimeError``, ``HistoryError``, ...). An error that
    callers may catch as a standard one keeps that as its second base:
    :class:`InvalidMessageError` is a ``ValueError``, ``InvalidTargetError`` a ``TypeError``.
    ``except CascadeError`` catches what Cascade refused or could not do, not a bug's
    ``KeyError``.
    """


class ConnectorError(CascadeError):
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


class InvalidTopicError(CascadeError, ValueError):
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


class InvalidMessageError(CascadeError, ValueError):
    """An incoming payload does not follow the wire protocol.

    ``path`` locates the offending field (``$.params.limit``; ``$`` for the whole
    payload) and ``reason`` says what is wrong with it.
    """

    def __init__(self, reason: str, path: str = "$") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason} - at `{path}`" if path != "$" else reason)
