"""Who a control is issued by, and why: `--as`, `$CASCADE_OPERATOR`, `--reason`.

What a writer puts in ``issued_by`` is a claim: the broker knows who logged in, the
message's readers do not, and nothing here checks it. Who may write constraints at
all is the broker's ACL to decide (docs/protocol.md shows one).
"""

from __future__ import annotations

import getpass
import re
import socket
from typing import Annotated

import typer

from ._context import UsageError

__all__ = [
    "issued",
    "MAX_OPERATOR_LENGTH",
    "MAX_REASON_LENGTH",
    "As",
    "Witness",
    "Reason",
    "checked_reason",
    "checked_text",
    "default_operator",
    "operator_name",
    "witness_login",
]

MAX_REASON_LENGTH = 256
"""The longest ``--reason`` a writer accepts, in characters."""
MAX_OPERATOR_LENGTH = 128
"""The longest name (``--as``, ``$CASCADE_OPERATOR``, a token's name) a writer accepts."""

# C0, DEL and C1 controls and lone surrogates, as in scopes: refused, never published.
_UNUSABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

Reason = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help=f"Why, shown to everyone who looks (at most {MAX_REASON_LENGTH} characters).",
    ),
]
As = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="CASCADE_OPERATOR",
        help="Who issues it (default: $CASCADE_OPERATOR, else --username, else user@host); "
        "a claim that nothing verifies.",
    ),
]

Witness = Annotated[
    bool,
    typer.Option(
        "--witness/--no-witness",
        envvar="CASCADE_WITNESS",
        help="Also say on {prefix}/issued/<--username> what was done, for the history's "
        "audit: where the broker's ACL binds that topic to the login (cascade acl writes "
        "it), the audit names the login as vouched for, not claimed.",
    ),
]


def witness_login(witness: bool, username: str | None) -> str | None:
    """The login a control's note is said under (:class:`~cascade.interfaces.IssuedNote`):
    ``username`` with ``--witness``; :class:`UsageError` with ``--witness`` and no login."""
    if not witness:
        return None
    if not username:
        raise UsageError("--witness needs --username: the note is said under the broker login")
    return username


def checked_text(value: str, what: str, limit: int) -> str:
    """``value`` stripped, if it is text a person typed: not empty, at most ``limit``
    characters, no control characters; else :class:`UsageError` naming ``what``."""
    text = value.strip()
    if not text:
        raise UsageError(f"{what} is empty")
    if len(text) > limit:
        raise UsageError(f"{what} is too long: {len(text)} characters, at most {limit}")
    unusable = _UNUSABLE.search(text)
    if unusable is not None:
        raise UsageError(
            f"{what} holds {unusable[0]!r}: give text without control characters, in UTF-8"
        )
    return text


def checked_reason(reason: str | None) -> str | None:
    """``--reason``: ``None``, or text as :func:`checked_text` accepts it."""
    return None if reason is None else checked_text(reason, "--reason", MAX_REASON_LENGTH)


def default_operator(username: str | None) -> str:
    """Who issues a control when nobody said: the MQTT username, else ``user@host``."""
    if username:
        return checked_text(username, "--username (the default for --as)", MAX_OPERATOR_LENGTH)
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name: a container without USER
        user = "unknown"
    name = _UNUSABLE.sub("_", f"{user}@{socket.gethostname()}")
    return name[:MAX_OPERATOR_LENGTH]


def operator_name(given: str | None, username: str | None) -> str:
    """``issued_by``: ``--as`` (or ``$CASCADE_OPERATOR``), else :func:`default_operator`."""
    if given is not None:
        return checked_text(given, "--as (or $CASCADE_OPERATOR)", MAX_OPERATOR_LENGTH)
    return default_operator(username)


def issued(by: str, reason: str | None) -> str:
    """`` by alice: "warehouse maintenance"``: what a command says after what it did."""
    return f" by {by}" + (f': "{reason}"' if reason else "")
