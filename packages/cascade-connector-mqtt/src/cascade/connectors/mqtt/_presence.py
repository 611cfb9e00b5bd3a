"""Presence: the session's will, birth and graceful offline, and keeping the birth in place."""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from cascade.connector_kit import PresenceGuard, RateLimitedLogger
from cascade.interfaces import (
    InvalidMessageError,
    StatusMessage,
    decode_status,
    encode_payload,
    status_topic,
)

__all__ = ["Presence"]

_log = logging.getLogger("cascade.connectors.mqtt")


_last_session = 0  # the highest session any connector of this process has used
_sessions_lock = threading.Lock()  # connectors may connect on loops of several threads


def _next_session(previous: int) -> int:
    """Milliseconds since the epoch, above ``previous`` and above every session this process
    has used.

    A time-based start makes sessions rise across processes of one source
    (a restarted engine with the same source id) without reading the
    broker first; within a process they rise by at least one per CONNECT,
    of any connector: two connectors sharing a source id that connect in the
    same millisecond would otherwise have one session, each taking the other's
    offline for its own, and the survivor would be shown offline.
    """
    global _last_session
    with _sessions_lock:
        _last_session = max(previous + 1, _last_session + 1, time.time_ns() // 1_000_000)
        return _last_session


class Presence:
    """This source's status messages (docs/protocol.md) for each connection's session.

    With ``enabled`` off (a CLI that only watches or controls) it announces
    nothing and leaves no status behind.
    """

    def __init__(self, source_id: str, prefix: str, enabled: bool, log: RateLimitedLogger) -> None:
        self.source_id = source_id
        self.topic = status_topic(source_id, prefix)
        self.enabled = enabled
        self.session = 0
        self._conflict: int | None = None  # the other session using this source id, if seen
        self._guard = PresenceGuard()
        self._log = log

    def new_session(self) -> None:
        """A connection attempt begins: its session number rises."""
        self.session = _next_session(self.session)
        self._conflict = None

    def payload(
        self,
        status: Literal["online", "offline"],
        reason: str | None = None,
        conflict_session: int | None = None,
    ) -> bytes:
        """The encoded status message of the current session."""
        message = StatusMessage.announce(
            status, self.source_id, self.session, reason, conflict_session
        )
        return encode_payload(message)

    def will(self) -> tuple[str, bytes] | None:
        """The retained ``offline`` the broker publishes if this session dies."""
        return (self.topic, self.payload("offline")) if self.enabled else None

    def birth(self) -> bytes | None:
        """The retained ``online`` of a new connection (``None`` when presence is off)."""
        if not self.enabled:
            return None
        self._guard.started(self.session)
        return self.payload("online")

    def answer(self, raw: bytes) -> bytes | None:
        """What to publish (retained) on seeing ``raw`` on our own status topic, if anything.

        What a status message on our own topic means is
        :class:`~cascade.connector_kit.PresenceGuard`'s rule. A stale offline (a
        will the broker sent late, when it was slow to notice a dead
        connection) would replace the retained birth, so that a reader
        arriving later sees only "offline": announce online again. Another
        session's online or offline means a second connector uses this
        source id: log it (rate-limited) and announce online again, naming
        the other session, so that the surviving one is shown online. An older offline read
        before the echo of our birth is the retained one the birth replaces (an engine of
        this source that ended before this one began: a restart, or the next engine of one
        process): nothing to say.
        """
        try:
            status = decode_status(raw)
        except InvalidMessageError:
            return None
        verdict = self._guard.judge(status)
        if verdict.kind == "stale" and not verdict.reannounce:
            # the retained status our birth replaces (a predecessor's offline, read at the
            # subscription before the birth): a normal restart, nothing replaced ours
            _log.debug("our online replaces a previous offline (session %s)", status.session)
        elif verdict.kind == "stale":
            _log.warning(
                "a stale offline (session %s) replaced this source's status; "
                "announcing online again (session %d)",
                status.session,
                self.session,
            )
        elif verdict.kind == "conflict":
            self._log.error(
                "source-conflict",
                "source id %r is also used by another connector (its session %s %s, ours %d): "
                "their status messages hide each other's; give each engine its own source_id",
                self.source_id,
                status.session,
                status.status,
                self.session,
            )
        if not verdict.reannounce:
            return None
        if verdict.conflict_session is not None:
            self._conflict = verdict.conflict_session
        return self.payload("online", conflict_session=verdict.conflict_session)

    def online_again(self) -> bytes:
        """The ``online`` to publish again (a roll call): naming the conflict, if one was seen."""
        return self.payload("online", conflict_session=self._conflict)
