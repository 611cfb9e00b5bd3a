"""What a login wrote, said where a broker ACL binds it to that login: the audit's witness.

A control's ``issued_by`` is what its writer claims. What the broker knows is who logged
in, and a broker ACL can bind a topic level to the login (mosquitto's ``%u``), as the
sourced layout binds an engine's telemetry. So a writer that logged in (`cascade pause`,
`limit`, `resume`, `cancel` with ``--username``) publishes, once its control is done, an
:class:`IssuedNote` to :func:`issued_topic` of its login, naming the topic it wrote: not
retained, read by the history's recorder, ignored by engines and by tools that do not know
it. Where the ACL lets each login write only its own (``pattern write {prefix}/issued/%u``,
which `cascade acl` writes), the recorder's audit says the broker vouches for that login
(`cascade record --logins-bound`); anywhere else a note is one more claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._constraint import convert
from ._errors import InvalidMessageError
from ._limits import MAX_CONTROL_PAYLOAD_BYTES, MAX_NUMBER
from ._topics import DEFAULT_PREFIX, decode_level, encode_level

__all__ = [
    "IssuedAction",
    "IssuedNote",
    "decode_issued_note",
    "issued_filter",
    "issued_topic",
    "login_of",
]

_ISSUED = "/issued/"

IssuedAction: TypeAlias = Literal["set", "cleared", "cancel", "retry", "skip", "complete", "fail"]
"""What a login did: set or cleared a constraint, cancelled a run, or decided on a held task."""


class IssuedNote(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A control its login did: ``set`` (a constraint, on ``topic``), ``cleared`` (the
    constraint on ``topic``), ``cancel`` (the request ``id`` on ``topic``) or a decision on
    a held task, ``retry``, ``skip``, ``complete`` or ``fail`` (the request ``id`` on the
    run's decide ``topic``), with the ``issued_at`` and ``issued_by`` the control itself
    says."""

    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    action: IssuedAction
    issued_at: Annotated[float, msgspec.Meta(ge=0, le=MAX_NUMBER)] | None = None
    issued_by: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    id: Annotated[str, msgspec.Meta(max_length=256)] | None = None


def issued_topic(login: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where ``login`` says what it did: ``{prefix}/issued/{login}`` (the login encoded as
    every topic level is: :func:`encode_level`)."""
    return prefix + _ISSUED + encode_level(login)


def issued_filter(prefix: str = DEFAULT_PREFIX) -> str:
    """The filter over every login's notes."""
    return prefix + _ISSUED + "+"


def login_of(topic: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The login a note's topic names (its level decoded: :func:`decode_level`);
    ``ValueError`` for a topic that is no note's."""
    head = prefix + _ISSUED
    login = topic[len(head) :] if topic.startswith(head) else ""
    if not login or "/" in login:
        raise ValueError(f"not an issued note's topic under {prefix!r}: {topic!r}")
    return decode_level(login)


def decode_issued_note(data: Mapping[str, Any] | bytes | str) -> IssuedNote:
    """Decode an untrusted note; :class:`InvalidMessageError` if it is none (too large, not
    an object, a field of the wrong type or an unknown action)."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"issued note is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, IssuedNote)
