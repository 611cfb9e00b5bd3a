"""Strict decoding of the kit's own retained records (the constraints index's shards and the
single record earlier versions kept), with the protocol's error."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from cascade.interfaces import InvalidMessageError, decode_payload

_Record = TypeVar("_Record", bound=msgspec.Struct)


def decode_record(raw: bytes, record_type: type[_Record]) -> _Record:
    """``raw`` as a ``record_type``, or :class:`InvalidMessageError` naming what is wrong: a
    field as a path under ``$``, or, for bytes that are no JSON, what the protocol's
    :func:`~cascade.interfaces.decode_payload` says of them."""
    try:
        return msgspec.json.decode(raw, type=record_type)
    except msgspec.ValidationError as exc:
        reason, _, path = str(exc).partition(" - at `")
        raise InvalidMessageError(reason, "$" + path.rstrip("`").removeprefix("$")) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        decode_payload(raw)  # raises the protocol's InvalidMessageError for it
        raise InvalidMessageError(f"payload is not valid JSON: {exc}") from None
