"""Per-person API tokens: made, listed, looked up and revoked (``api_tokens``).

A token is :data:`TOKEN_PREFIX` and 32 random bytes, URL-safe base64: recognisable in a
leaked file or a secret scanner, and too many to guess. The database keeps its SHA-256,
never the secret: a fast hash is the right one for a secret of 256 random bits (a slow,
salted one is for passwords, which are guessable; no one can search 2**256 secrets however
fast each try is), and it lets a lookup find the row by an index. ``label`` (the secret's
first characters) tells tokens apart in a list without being enough to use one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .._text import clean
from ..store._schema import api_tokens

__all__ = [
    "MAX_HOLDER",
    "TOKEN_PREFIX",
    "ApiToken",
    "NewToken",
    "find_token",
    "insert_token",
    "list_tokens",
    "revoke_token",
    "token_hash",
    "token_used",
]

TOKEN_PREFIX = "cascade_"
"""What every API token's secret starts with."""
MAX_HOLDER = 256
"""The longest holder (or creator) name, in characters."""
_LABEL = len(TOKEN_PREFIX) + 6  # 36 of the secret's 256 bits: a name, not a key
_MAX_NOTE = 1024


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as the history keeps it: everything but the secret (and its hash).

    ``holder``: the person whose roles it carries (as the roles file names them).
    ``label``: the secret's first characters (``cascade_AbC123``). ``expires_at``,
    ``revoked_at``, ``last_used_at``: epoch seconds, ``None`` for never (yet).
    ``last_used_at`` is when a dashboard last looked it up (at most every few seconds).
    """

    id: int
    holder: str
    label: str
    note: str | None
    created_by: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def state(self, now: float) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        """This token as a JSON object (no secret: the history has none)."""
        return {
            "id": self.id,
            "holder": self.holder,
            "label": self.label,
            "note": self.note,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made, and its secret: shown once, kept nowhere (not even in its ``repr``)."""

    token: ApiToken
    secret: str = field(repr=False)


def token_hash(secret: str) -> str:
    """The SHA-256 (hex) of ``secret``: how the history finds a token."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty: give a person's name as the roles file names them")
    if len(value) > MAX_HOLDER:
        raise ValueError(f"{what} is longer than {MAX_HOLDER} characters")
    if not value.isprintable():
        raise ValueError(f"{what} {value[:40]!r} has a control character")
    return value


def _token(row: Any) -> ApiToken:
    return ApiToken(
        row.id,
        row.holder,
        row.label,
        row.note,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


def insert_token(
    connection: sa.Connection,
    holder: str,
    *,
    created_by: str,
    note: str | None,
    expires_at: float | None,
    now: float,
) -> NewToken:
    """Make a token for ``holder`` (``ValueError`` for a name or note that cannot be one)."""
    holder = _name(holder, "the holder")
    created_by = _name(created_by, "created_by")
    if expires_at is not None and expires_at <= now:
        raise ValueError("the token would expire before it is made: give a later expiry")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    label = secret[:_LABEL]
    kept_note = clean(note, _MAX_NOTE) if note else None
    row = {
        "holder": holder,
        "secret_hash": token_hash(secret),
        "label": label,
        "note": kept_note,
        "created_by": created_by,
        "created_at": now,
        "expires_at": expires_at,
    }
    key = connection.execute(sa.insert(api_tokens).values(row)).inserted_primary_key
    assert key is not None
    token_id = key[0]
    token = ApiToken(int(token_id), holder, label, kept_note, created_by, now, expires_at)
    return NewToken(token, secret)


_LISTED = [c for c in api_tokens.c if c.name != "secret_hash"]


def list_tokens(connection: sa.Connection, *, holder: str | None = None) -> list[ApiToken]:
    """Every token (of ``holder``), the newest first."""
    query = sa.select(*_LISTED).order_by(api_tokens.c.id.desc())
    if holder is not None:
        query = query.where(api_tokens.c.holder == holder)
    return [_token(row) for row in connection.execute(query)]


def find_token(connection: sa.Connection, secret: str) -> ApiToken | None:
    """The token whose secret is ``secret`` (revoked and expired ones too), else ``None``."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    query = sa.select(*_LISTED).where(api_tokens.c.secret_hash == token_hash(secret))
    row = connection.execute(query).first()
    return None if row is None else _token(row)


def token_used(connection: sa.Connection, token_id: int, at: float) -> None:
    """Note that token ``token_id`` was used at ``at``."""
    connection.execute(
        sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at)
    )


def revoke_token(connection: sa.Connection, token_id: int, now: float) -> ApiToken | None:
    """Revoke token ``token_id`` (one revoked already keeps its first time); ``None`` if
    there is no such token."""
    connection.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    row = connection.execute(sa.select(*_LISTED).where(api_tokens.c.id == token_id)).first()
    return None if row is None else _token(row)
