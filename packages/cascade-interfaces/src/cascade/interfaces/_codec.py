"""Turning payloads into bytes on the wire and back, the same way in every connector."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import msgspec

from ._errors import InvalidMessageError

__all__ = ["Payload", "decode_payload", "encode_payload"]

Payload: TypeAlias = "Mapping[str, Any] | msgspec.Struct | str | bytes"
"""What ``Connector.publish`` accepts.

A mapping or schema object is sent as JSON; text and bytes are sent as they
are. An empty payload sent retained clears the topic's retained message.
"""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode_payload(payload: Payload) -> bytes:
    """Encode ``payload`` for the wire: mappings and schema objects as JSON, text as UTF-8."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (Mapping, msgspec.Struct)):
        return _encoder.encode(payload)
    raise TypeError(
        f"payload must be a mapping, a schema object, str or bytes, not {type(payload).__name__}"
    )


def decode_payload(raw: bytes) -> dict[str, Any]:
    """Decode a received payload: a JSON object, or ``{}`` for an empty payload.

    Raises :class:`InvalidMessageError` for anything else (not UTF-8, not JSON,
    not an object, nested too deeply, numbers out of range).
    """
    if not raw:
        return {}
    try:
        value = _decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise invalid_message(exc) from None
    if not isinstance(value, dict):
        raise InvalidMessageError(f"payload must be a JSON object, not {_json_kind(value)}")
    return value


DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What msgspec raises for untrusted input (bad UTF-8 inside a JSON string: UnicodeDecodeError
before msgspec 0.23, a DecodeError since)."""


def invalid_message(exc: BaseException, prefix: str | None = None) -> InvalidMessageError:
    """The :class:`InvalidMessageError` for one of :data:`DECODE_ERRORS`, naming what is wrong.

    Decoding against a schema (``prefix`` given): a validation error names the
    field as a path under ``prefix`` (``$.params.limit``). Without one, every
    msgspec error means the payload is not the JSON a reader can take.
    """
    if prefix is not None and isinstance(exc, msgspec.ValidationError):
        reason, _, path = str(exc).partition(" - at `")
        return InvalidMessageError(reason, prefix + path.rstrip("`").removeprefix("$"))
    # msgspec before 0.23 raises UnicodeDecodeError for bad UTF-8 inside a JSON string, 0.23 a
    # DecodeError saying "Invalid UTF-8 encoded string": either is the same refusal
    if isinstance(exc, UnicodeDecodeError) or "UTF-8" in str(exc):
        return InvalidMessageError(f"payload is not valid UTF-8: {exc}")
    if isinstance(exc, RecursionError):
        return InvalidMessageError("payload is nested too deeply")
    return InvalidMessageError(f"payload is not valid JSON: {exc}")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
