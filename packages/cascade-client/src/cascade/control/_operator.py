"""Who a control is issued by, and why: text a person typed, checked before it is published.

What a writer puts in ``issued_by`` is a claim: the broker knows who logged in, the
message's readers do not, and nothing here checks it. Who may write constraints at
all is the broker's ACL to decide (docs/protocol.md shows one).
"""

from __future__ import annotations

import getpass
import re
import socket

from ._errors import ControlError

__all__ = [
    "MAX_OPERATOR_LENGTH",
    "MAX_REASON_LENGTH",
    "checked_name",
    "checked_reason",
    "checked_text",
    "default_operator",
]

MAX_REASON_LENGTH = 256
"""The longest ``reason`` a writer accepts, in characters."""
MAX_OPERATOR_LENGTH = 128
"""The longest name (``issued_by``, a token's name) a writer accepts."""

# C0, DEL and C1 controls and lone surrogates, as in scopes: refused, never published.
_UNUSABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def checked_text(value: str, what: str, limit: int, field: str | None = None) -> str:
    """``value`` stripped, if it is text a person typed: not empty, at most ``limit``
    characters, no control characters; else :class:`ControlError` naming ``what`` (its
    :attr:`~ControlError.field` is ``field``, else ``what``)."""
    field = what if field is None else field
    text = value.strip()
    if not text:
        raise ControlError(f"{what} is empty", field)
    if len(text) > limit:
        raise ControlError(f"{what} is too long: {len(text)} characters, at most {limit}", field)
    unusable = _UNUSABLE.search(text)
    if unusable is not None:
        raise ControlError(
            f"{what} holds {unusable[0]!r}: give text without control characters, in UTF-8",
            field,
        )
    return text


def checked_name(value: str, what: str = "issued_by") -> str:
    """``value`` stripped, if it is a name a person typed (who issues a control, a token's
    holder): not empty, at most :data:`MAX_OPERATOR_LENGTH` characters, no control
    characters; else :class:`ControlError` naming ``what``."""
    if not isinstance(value, str):
        raise ControlError(f"{what} must be text, not {value!r}", what)
    return checked_text(value, what, MAX_OPERATOR_LENGTH)


def checked_reason(reason: str | None) -> str | None:
    """``reason``: ``None``, or text as :func:`checked_text` accepts it."""
    return None if reason is None else checked_text(reason, "reason", MAX_REASON_LENGTH)


def default_operator(username: str | None) -> str:
    """Who issues a control when nobody said: the broker ``username``, else ``user@host``."""
    if username:
        return checked_text(username, "username", MAX_OPERATOR_LENGTH)
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name: a container without USER
        user = "unknown"
    name = _UNUSABLE.sub("_", f"{user}@{socket.gethostname()}")
    return name[:MAX_OPERATOR_LENGTH]
