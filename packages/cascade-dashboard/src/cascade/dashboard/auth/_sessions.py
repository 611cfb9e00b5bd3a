"""Sign-in sessions the dashboard keeps, so that a session ends for good when its person signs
out or an admin revokes it: the signed cookie carries a random session id, and a cookie is
believed only while the dashboard knows that session as live.

Kept in memory (each session until it expires: bounded by the session's lifetime) and, when
the dashboard has a history it may write, in its ``dashboard_sessions`` table too: sessions
and their ends then outlive a restart, and the dashboard reads the table again every
:data:`REFRESH_SECONDS` (:meth:`Sessions.keep_fresh`), so that a session ended elsewhere (`cascade
session revoke`, another dashboard of the history) ends here within that, and one begun at
another dashboard is known here too. A session is known by its *handle*, a hash of its id:
the id is in the cookie only, so a handle that is listed (``/api/sessions``) or read from
the database cannot be made into a cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.history import DashboardSession, History

__all__ = ["REFRESH_SECONDS", "Sessions", "handle_of"]

_log = logging.getLogger("cascade.dashboard")
#: Seconds between two reads of the history's sessions.
REFRESH_SECONDS = 5.0


def handle_of(session_id: str) -> str:
    """The handle of session ``session_id``: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Sessions:
    """The live sessions, each ``max_age`` seconds at most, in memory and ``history``."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.history: History | None = None
        self._live: dict[str, DashboardSession] = {}

    def attach(self, history: History) -> None:
        """Keep sessions in ``history`` too, and take its live ones (blocks: before serving)."""
        from cascade.history import HistoryError

        self.history = history
        try:
            self.refresh()
        except HistoryError as exc:
            _log.warning("the sign-in sessions could not be read: %s", exc)

    def refresh(self) -> None:
        """Take the history's sessions again (blocks): those ended there end here, those live
        there are live here. A session only this dashboard has (its write failed) stays."""
        if self.history is None:
            return
        now = time.time()
        for session in self.history.sessions(since_expiry=now):
            if session.live(now):
                self._live.setdefault(session.handle, session)
            else:
                self._live.pop(session.handle, None)

    async def keep_fresh(self) -> None:
        """:meth:`refresh` every :data:`REFRESH_SECONDS`, until cancelled; a history that
        cannot be read is logged (at most once a minute) and read again next time."""
        from cascade.connector_kit import RateLimitedLogger
        from cascade.history import HistoryError

        said = RateLimitedLogger(_log, interval=60.0)
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self.refresh)
            except HistoryError as exc:
                said.warning("unreadable", "the sign-in sessions could not be read: %s", exc)

    def live(self, session_id: object) -> bool:
        """Whether the session of ``session_id`` (a cookie's) is live."""
        if not isinstance(session_id, str):
            return False
        session = self._live.get(handle_of(session_id))
        if session is None:
            return False
        if not session.live(time.time()):
            del self._live[session.handle]
            return False
        return True

    def listed(self) -> list[DashboardSession]:
        """The live sessions, the newest first."""
        now = time.time()
        found = [s for s in self._live.values() if s.live(now)]
        return sorted(found, key=lambda s: s.signed_in_at, reverse=True)

    async def start(self, who: str, claim: str | None) -> str:
        """A new session of ``who``: its id, for the cookie."""
        from cascade.history import DashboardSession, HistoryError

        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = DashboardSession(handle_of(session_id), who, claim, now, now + self.max_age)
        self._prune(now)
        self._live[session.handle] = session
        if self.history is not None:
            try:
                await asyncio.to_thread(self.history.add_session, session)
            except (HistoryError, ValueError) as exc:  # it lives here, not past a restart
                _log.warning("the sign-in session of %r was not kept in the history: %s", who, exc)
        return session_id

    async def end(
        self,
        by: str,
        *,
        session_id: str | None = None,
        handle: str | None = None,
        who: str | None = None,
    ) -> list[DashboardSession]:
        """End the session of ``session_id`` (signing out), of ``handle``, or every one of
        ``who`` (an admin's revocation); the sessions ended."""
        from cascade.history import HistoryError

        if session_id is not None:
            handle = handle_of(session_id)
        now = time.time()
        ended = [
            s
            for s in self._live.values()
            if s.handle == handle or (who is not None and s.who == who)
        ]
        for session in ended:
            del self._live[session.handle]
        if self.history is not None:
            try:
                stored = await asyncio.to_thread(
                    self.history.revoke_sessions,
                    by=by,
                    at=now,
                    handle=handle,
                    who=None if handle is not None else who,
                )
            except (HistoryError, ValueError) as exc:
                _log.error(
                    "the end of a sign-in session was not kept in the history "
                    "(it holds until this dashboard restarts): %s",
                    exc,
                )
            else:
                known = {s.handle for s in ended}
                ended += [s for s in stored if s.handle not in known]
        return ended

    def _prune(self, now: float) -> None:
        for handle in [h for h, s in self._live.items() if not s.live(now)]:
            del self._live[handle]
