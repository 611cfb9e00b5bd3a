"""Turning aiomqtt and paho failures into reasons a user can act on."""

from __future__ import annotations

import socket
import ssl

__all__ = ["describe_connect_failure", "describe_failure", "is_refusal"]

# MQTT 3.1.1 CONNACK return codes and their MQTT 5 equivalents.
_REFUSALS = {
    1: "the broker refused the protocol version",
    2: "the broker rejected the client id",
    3: "the broker is unavailable",
    4: "bad user name or password",
    5: "not authorised",
    0x84: "the broker refused the protocol version",
    0x85: "the broker rejected the client id",
    0x86: "bad user name or password",
    0x87: "not authorised",
    0x88: "the broker is unavailable",
    0x8C: "bad authentication method",
}


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


_UNAVAILABLE = frozenset({3, 0x88})  # a node that may be back soon: not a refusal for good


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the broker refusing the CONNECT for good (a CONNACK with an error
    code other than "unavailable", which a restarting node answers)."""
    from aiomqtt.exceptions import MqttConnectError

    for cause in _causes(exc):
        if isinstance(cause, MqttConnectError):
            rc = getattr(cause, "rc", None)
            return getattr(rc, "value", rc) not in _UNAVAILABLE
    return False


def describe_connect_failure(exc: BaseException, timeout: float) -> str:
    """Why a connection attempt failed, in words: refused, unreachable, credentials, TLS, ..."""
    from aiomqtt.exceptions import MqttConnectError

    for cause in _causes(exc):
        if isinstance(cause, MqttConnectError):
            rc = getattr(cause, "rc", None)
            value = getattr(rc, "value", rc)
            if isinstance(value, int) and value in _REFUSALS:
                return f"connection refused by the broker: {_REFUSALS[value]}"
            return f"connection refused by the broker: {rc}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", None) or cause
            return f"TLS failure: certificate verification failed ({detail})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the broker running and listening on that port?)"
        if isinstance(cause, socket.gaierror):
            return f"unknown host ({cause.strerror})"
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return f"no answer from the broker within {timeout:g} s"
        if isinstance(cause, UnicodeError):
            return "not a host name the resolver can look up"
        if isinstance(cause, ConnectionResetError):
            return "the broker closed the connection during the handshake"
        if isinstance(cause, OSError) and cause.strerror:
            return f"network unreachable or failing ({cause.strerror})"
    text = str(exc)
    if "timed out" in text.lower():
        return f"no answer from the broker within {timeout:g} s"
    return text or type(exc).__name__


def describe_failure(exc: BaseException, timeout: float) -> str:
    """Why a connected client's operation failed, never empty.

    A wait for the broker that timed out (the link's own, bounded by the
    connector's ``connect_timeout``, or aiomqtt's ``MqttError("Operation timed
    out")``, which names neither the wait nor its length) says ``timeout``.
    """
    text = str(exc)
    if isinstance(exc, TimeoutError) or "timed out" in text.lower():
        return f"no answer from the broker within {timeout:g} s (connect_timeout)"
    return text or f"{type(exc).__name__} (without a message)"
