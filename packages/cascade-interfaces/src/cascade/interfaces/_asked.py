"""What a person puts in a request to steer: who issues it and why, and the run it names, checked
where the request is made, before anything is sent; :class:`ControlError`, what a refused one
raises.

What a writer puts in ``issued_by`` is a claim: the broker knows who logged in, the
message's readers do not, and nothing here checks it. Who may write constraints at
all is the broker's ACL to decide (docs/protocol.md shows one). The engine deciding in its
own process (``Engine.decide``) and every face sending over the broker (``cascade.control``)
check alike.
"""

from __future__ import annotations

import getpass
import re
import socket
import uuid

from ._errors import CascadeError

__all__ = [
    "FULL_ID",
    "MAX_OPERATOR_LENGTH",
    "MAX_REASON_LENGTH",
    "ControlError",
    "checked_name",
    "checked_prefix",
    "checked_reason",
    "checked_text",
    "default_operator",
    "is_full",
    "new_request_id",
]


class ControlError(CascadeError, ValueError):
    """A control's input is invalid; nothing was sent.

    :attr:`field` names the input at fault, as :class:`~cascade.control.Controller` takes it
    (``scope``, ``ttl``, ``concurrency``, ``rate``, ``type``, ``reason``, ``issued_by``,
    ``username``, ``run_id``); the message speaks of it by that name (``ttl must be ...``),
    so a face (the CLI, the dashboard) can say it in its own words.
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def new_request_id() -> str:
    """A fresh request ``id``: 32 hex digits."""
    return uuid.uuid4().hex


FULL_ID = 32
"""A whole run id's length: 32 hex digits."""
_HEX = re.compile(r"[0-9a-f]{1,32}")


def is_full(run_id: str) -> bool:
    """Whether ``run_id`` (from :func:`checked_prefix`) is a whole run id, not a prefix."""
    return len(run_id) == FULL_ID


def checked_prefix(value: str) -> str:
    """``value`` in lower case when it is a run id or a prefix of one (1 to 32 hex digits);
    else :class:`ControlError`."""
    if not isinstance(value, str):
        raise ControlError(f"a run id is text: hex digits, not {value!r}", "run_id")
    text = value.strip().lower()
    if not _HEX.fullmatch(text):
        raise ControlError(
            f"a run id is hex digits: all 32, or a prefix only one run has, not {value!r}", "run_id"
        )
    return text


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
    """``reason``: ``None``, or text as :func:`checked_text` accepts it; else
    :class:`ControlError` (``reason must be text``)."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise ControlError(f"reason must be text, not {reason!r}", "reason")
    return checked_text(reason, "reason", MAX_REASON_LENGTH)


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
