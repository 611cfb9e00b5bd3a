"""Text from the broker as the databases store it.

A NUL (which PostgreSQL refuses) and lone surrogates (which have no UTF-8)
are written as their escapes, and fields are bounded (ids and names 1,024
bytes, errors as engines cut them).
"""

from __future__ import annotations

from cascade.interfaces import InvalidIdError, InvalidMessageError, validate_id

__all__ = ["MAX_TEXT_BYTES", "checked_id", "clean"]

MAX_TEXT_BYTES = 1024
"""Bytes kept of a task's id and name and of a status's reason (they are indexed or shown)."""

_CUT = "…[cut]"


def clean(text: str, limit: int | None = MAX_TEXT_BYTES) -> str:
    """``text`` as the databases store it: NUL and lone surrogates escaped, at most ``limit``
    bytes of UTF-8 (then ``…[cut]``)."""
    if text.isascii() and "\x00" not in text and (limit is None or len(text) <= limit):
        return text  # the usual case, as it is
    data = text.encode("utf-8", "backslashreplace")
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\\x00")
    if limit is not None and len(data) > limit:
        room = limit - len(_CUT.encode())
        return data[:room].decode("utf-8", "ignore") + _CUT
    return data.decode("utf-8")


def checked_id(value: str, name: str) -> str:
    """``value`` if it is an id of the protocol (``InvalidMessageError`` if not), as stored."""
    try:
        validate_id(value, name)
    except InvalidIdError as exc:
        raise InvalidMessageError(str(exc), f"$.{name}") from None
    return clean(value, None)
