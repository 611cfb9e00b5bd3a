"""A team's dashboard's sign-in sessions (``dashboard_sessions``): kept so that signing out and
an admin's revocation end a session for good, whatever copy of its cookie is still around.

A session is known by its ``handle``: a hash of the session id its signed cookie carries,
never the id itself (a handle listed or leaked cannot be made into a cookie). A session the
dashboard finds here unrevoked and unexpired is live; nothing else is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from .._text import clean
from ..store._schema import dashboard_sessions

__all__ = ["DashboardSession", "insert_session", "list_sessions", "revoke_sessions"]

_T = TypeVar("_T")
_MAX_HANDLE = 64
_KEPT_AFTER_EXPIRY = 86400.0  # a day: the list still shows a session that just ended


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """One sign-in: ``who`` (as the ``claim`` named them), from ``signed_in_at`` until
    ``expires_at``, or until ``revoked_at`` (by ``revoked_by``: themselves signing out, or an
    admin). Times are epoch seconds."""

    handle: str
    who: str
    claim: str | None
    signed_in_at: float
    expires_at: float
    revoked_at: float | None = None
    revoked_by: str | None = None

    def live(self, now: float) -> bool:
        """Whether the session still signs its person in at ``now``."""
        return self.revoked_at is None and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """This session as a JSON object."""
        return {
            "handle": self.handle,
            "who": self.who,
            "claim": self.claim,
            "signed_in_at": self.signed_in_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
        }


def _session(row: Any) -> DashboardSession:
    return DashboardSession(
        row.handle,
        row.who,
        row.claim,
        row.signed_in_at,
        row.expires_at,
        row.revoked_at,
        row.revoked_by,
    )


def insert_session(connection: sa.Connection, session: DashboardSession) -> None:
    """Keep ``session`` (a new sign-in), and forget those expired a day ago or more."""
    if not session.handle or len(session.handle) > _MAX_HANDLE:
        raise ValueError("a session's handle is 1 to 64 characters")
    ds = dashboard_sessions
    connection.execute(
        sa.delete(ds).where(ds.c.expires_at < session.signed_in_at - _KEPT_AFTER_EXPIRY)
    )
    connection.execute(
        sa.insert(ds).values(
            handle=session.handle,
            who=clean(session.who, 256),
            claim=clean(session.claim, 64) if session.claim else None,
            signed_in_at=session.signed_in_at,
            expires_at=session.expires_at,
        )
    )


def list_sessions(connection: sa.Connection, since_expiry: float | None) -> list[DashboardSession]:
    """The sessions kept, the newest first: those expiring after ``since_expiry`` (all kept,
    for ``None``)."""
    ds = dashboard_sessions
    query = sa.select(ds).order_by(ds.c.signed_in_at.desc(), ds.c.handle)
    if since_expiry is not None:
        query = query.where(ds.c.expires_at > since_expiry)
    return [_session(row) for row in connection.execute(query)]


def revoke_sessions(
    connection: sa.Connection, *, by: str, at: float, handle: str | None, who: str | None
) -> list[DashboardSession]:
    """End the live session ``handle``, or every live one of ``who``, as ``by`` at ``at``; the
    sessions it ended."""
    ds = dashboard_sessions
    where = ds.c.handle == handle if handle is not None else ds.c.who == who
    live = sa.and_(where, ds.c.revoked_at.is_(None), ds.c.expires_at > at)
    ended = [_session(row) for row in connection.execute(sa.select(ds).where(live))]
    if ended:
        connection.execute(
            sa.update(ds)
            .where(ds.c.handle.in_([s.handle for s in ended]))
            .values(revoked_at=at, revoked_by=clean(by, 256))
        )
    return [
        DashboardSession(s.handle, s.who, s.claim, s.signed_in_at, s.expires_at, at, by)
        for s in ended
    ]
