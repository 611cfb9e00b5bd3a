"""Who a control is issued by, and why: `--as`, `$CASCADE_OPERATOR`, `--reason`, and the
default operator."""

from __future__ import annotations

from typing import Annotated

import typer

from cascade.control.checks import MAX_REASON_LENGTH, checked_name, default_operator

from ._context import UsageError

__all__ = [
    "As",
    "Reason",
    "Witness",
    "issued",
    "operator_name",
    "witness_login",
]

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
    """The login a control's note is said under (:class:`~cascade.interfaces.notes.IssuedNote`):
    ``username`` with ``--witness``; :class:`UsageError` with ``--witness`` and no login."""
    if not witness:
        return None
    if not username:
        raise UsageError("--witness needs --username: the note is said under the broker login")
    return username


def operator_name(given: str | None, username: str | None) -> str:
    """``issued_by``: ``--as`` (or ``$CASCADE_OPERATOR``), else the default operator (the
    broker username, else ``user@host``)."""
    if given is not None:
        return checked_name(given)
    return default_operator(username)


def issued(by: str, reason: str | None) -> str:
    """`` by alice: "warehouse maintenance"``: what a command says after what it did."""
    return f" by {by}" + (f': "{reason}"' if reason else "")
