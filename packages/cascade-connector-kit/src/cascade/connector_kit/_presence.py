"""What a connector makes of the status messages on its own source's topic.

Readers decide which status message hides which with
:meth:`StatusMessage.supersedes`; a connector that announces a source
watches that source's retained status and uses the same rule here to tell
its own old wills from another live connector using the same source id.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from cascade.interfaces import StatusMessage

__all__ = ["PresenceGuard", "PresenceVerdict"]

_REMEMBERED = 256  # sessions kept per kind: bounded whatever a hostile publisher sends


@dataclass(frozen=True, slots=True)
class PresenceVerdict:
    """What to do about one status message seen on the connector's own status topic.

    ``kind``: ``"own"`` (this connector's current status: nothing to do),
    ``"stale"`` (an offline of an older session: this connector's own earlier
    connection, or a process before it with the same source id, whose will
    the broker sent late) or ``"conflict"`` (another connector, live now or
    until just now, announces the same source id). ``reannounce``: publish
    this connector's ``online`` again (retained), so the source is shown
    online while it lives; ``conflict_session`` is the other connector's
    session, for the re-announced ``online`` and the log.
    """

    kind: Literal["own", "stale", "conflict"]
    reannounce: bool = False
    conflict_session: int | None = None


class _Sessions:
    """A bounded set of session numbers: the oldest added is forgotten first."""

    def __init__(self) -> None:
        self._items: OrderedDict[int, None] = OrderedDict()

    def add(self, session: int) -> bool:
        """Add ``session``; whether it was new."""
        if session in self._items:
            return False
        self._items[session] = None
        if len(self._items) > _REMEMBERED:
            self._items.popitem(last=False)
        return True

    def __contains__(self, session: object) -> bool:
        return session in self._items


class PresenceGuard:
    """Judges status messages on a connector's own status topic.

    Call :meth:`started` with each new session the connector announces
    ``online``, then :meth:`judge` with every status message received on its
    own topic while it is online. The rules:

    - its own current ``online``: nothing to do;
    - an ``offline`` that :meth:`StatusMessage.supersedes` would ignore
      against the connector's ``online`` (an older session) and that comes
      from no connector seen live: a stale will (its own earlier connection,
      or a process before it). Retained, it hides the live source from
      readers that arrive later: re-announce, once the echo of the connector's
      own ``online`` was seen. Before that echo the broker took the stale one
      first, so the ``online`` replaced it (the connector subscribes to its
      own topic before its birth, and is given the retained status it replaces);
    - an ``online`` of another session: a second live connector uses this
      source id. Conflict; re-announce once per such session (with
      ``conflict_session``), unless that ``online`` already names this
      connector's session, so that two connectors tell each other once and
      stop;
    - an ``offline`` of a session seen live, or of a newer session: the other
      connector ended, and its offline hides this live one. Conflict;
      re-announce, each time: the other connector's will can follow its graceful
      offline (a connection closed before its DISCONNECT), and hides this one again.
      The ended connector answers nothing, so no two connectors answer each other.
    """

    def __init__(self) -> None:
        self._session: int | None = None
        self._own = _Sessions()
        self._peers = _Sessions()  # other sessions seen online
        self._answered_online = _Sessions()
        self._echoed = False  # the current session's own online came back from the broker

    @property
    def session(self) -> int | None:
        """The connector's current session, once :meth:`started` was called."""
        return self._session

    def started(self, session: int) -> None:
        """The connector announced ``online`` with ``session`` (a new connection)."""
        self._session = session
        self._own.add(session)
        self._echoed = False

    def judge(self, seen: StatusMessage) -> PresenceVerdict:
        """The verdict on ``seen``, a status message on the connector's own topic."""
        session = self._session
        if session is None:
            return PresenceVerdict("own")
        other = seen.session
        if other is not None and other in self._own:
            if seen.status == "offline" and other != session:
                return PresenceVerdict("stale", reannounce=self._echoed)
            if other == session and seen.status == "online":
                self._echoed = True
            return PresenceVerdict("own")
        if seen.status == "online":
            if other is None:  # an older tool, live under this source id
                return PresenceVerdict("conflict")
            self._peers.add(other)
            first = self._answered_online.add(other)
            answer = first and seen.conflict_session != session
            return PresenceVerdict("conflict", reannounce=answer, conflict_session=other)
        mine = StatusMessage(status="online", session=session)
        if other is None or (other not in self._peers and not seen.supersedes(mine)):
            return PresenceVerdict("stale", reannounce=self._echoed)
        return PresenceVerdict("conflict", reannounce=True, conflict_session=other)
