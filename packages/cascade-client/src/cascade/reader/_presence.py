"""Engines' presence, from their status messages, and the reader's own broker connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cascade.interfaces import Message, StatusMessage, decode_level, decode_status, same_source

from ._bounded_text import KEPT, truncate
from ._gaps import GapCounter
from ._refusals import REASON_FUTURE, REASON_MISMATCH, Refusals, ahead
from ._silence import note_will
from ._timestamps import parse_timestamp
from ._views import ConnectionView, EngineView

__all__ = [
    "ENDED_FOLD_AFTER",
    "EngineRows",
    "apply_status",
    "ended_cleanly",
    "engine_rows",
    "forget_engines",
    "observe_connection",
    "visible_engines",
]


def apply_status(
    engines: dict[str, EngineView],
    refusals: Refusals,
    clock: Callable[[], float],
    message: Message,
) -> tuple[EngineView, set[str]] | None:
    """A status message: an engine's presence, unless a stale will or a refused claim. An
    engine that it says went offline is returned with the runs it still ran as far as this
    reader knew (:attr:`EngineView.live_seen`, emptied): its status is the broker's word that
    they are lost."""
    level = message.topic.rsplit("/", 1)[-1]
    source = decode_level(level)
    if not message.payload:  # a cleared retained status (`cascade forget`)
        engines.pop(source, None)
        return None
    status = decode_status(message.payload)
    if status.source and not same_source(status.source, level):
        refusals.count(source, REASON_MISMATCH)  # the topic is what an ACL binds
        return None
    stamp = parse_timestamp(status.ts)
    if stamp is not None and ahead(stamp, clock()):
        refusals.count(status.source or source, REASON_FUTURE)
        return None
    if status.reason is not None and len(status.reason) > KEPT["reason"]:
        status.reason = truncate(status.reason, KEPT["reason"])
    source = status.source or source
    known = engines.get(source)
    if known is None:
        known = engines[source] = EngineView(source, status)
        known.conflict_session = _conflict(status, None)
    elif known.status is None or status.supersedes(known.status):
        known.conflict_session = _conflict(status, known)
        known.status = status
    died = None
    if known.status is not None and known.status.status == "offline":
        died = (known, known.live_seen)
        known.live_seen = set()  # it ended, and its runs with it
    live_will = status.status == "offline" and status.reason is None and not message.retain
    # A will is stamped when its connection was made: heard live, it is the broker's word that
    # the connection was there until now, whatever its stamp says.
    known.heard(stamp if (stamp is not None or message.retain) and not live_will else clock())
    if live_will:
        note_will(known, clock())  # its connection lost now: the broker's word
    return died


def _conflict(status: StatusMessage, known: EngineView | None) -> int | None:
    """The other session sharing the source id that ``status`` reveals, if any."""
    if status.status != "online":
        return None
    if status.conflict_session is not None:
        return status.conflict_session
    before = known.status if known is not None else None
    if (
        before is not None
        and before.status == "online"
        and before.session is not None
        and status.session is not None
        and status.session < before.session  # sessions of one connector only rise
    ):
        return before.session
    return None


def forget_engines(engines: dict[str, EngineView], gaps: GapCounter, max_engines: int) -> int:
    """Down to 90 % of ``max_engines``: offline first, then the least recently heard; returns
    how many were forgotten (with their gap counts)."""
    ranked = sorted(engines.values(), key=lambda e: (e.online, e.last_seen or 0.0, e.source))
    doomed = ranked[: len(ranked) - max_engines * 9 // 10]
    for engine in doomed:
        del engines[engine.source]
        gaps.by_source.pop(engine.source, None)
    return len(doomed)


def visible_engines(
    engines: dict[str, EngineView], offline_max_age: float | None, now: float
) -> tuple[list[EngineView], int]:
    """Engines sorted by source, and how many were left out (see
    :meth:`ReaderModel.visible_engines`)."""
    shown: list[EngineView] = []
    hidden = 0
    for engine in sorted(engines.values(), key=lambda e: e.source):
        stale = (
            offline_max_age is not None
            and not engine.online
            and (engine.last_seen is None or now - engine.last_seen > offline_max_age)
        )
        if stale:
            hidden += 1
        else:
            shown.append(engine)
    return shown, hidden


ENDED_FOLD_AFTER = 60.0
"""Seconds after its clean end (its last message) from which an engine that ended cleanly is
folded into a counted line instead of a row of its own (:meth:`ReaderModel.engine_rows`):
every run of a script is a source of its own, and their ends would pile up."""


def ended_cleanly(engine: EngineView) -> bool:
    """Whether ``engine`` said it ended (``offline``, reason ``shutdown``) with nothing left
    to look at: no live run its summary counts (stranded), no other engine sharing its id."""
    status = engine.status
    if status is None or status.status != "offline" or status.reason != "shutdown":
        return False
    summary = engine.summary
    return not engine.conflict and (summary is None or summary.runs.running == 0)


@dataclass
class EngineRows:
    """The engines a view lists (:attr:`shown`, by source), how many offline ones it leaves out
    as too old (:attr:`hidden`), and those that ended cleanly a while ago, folded into a
    count (:attr:`folded`, by source)."""

    shown: list[EngineView]
    hidden: int
    folded: list[EngineView]


def engine_rows(
    engines: dict[str, EngineView],
    offline_max_age: float | None,
    fold_after: float | None,
    now: float,
) -> EngineRows:
    """See :meth:`ReaderModel.engine_rows`."""
    shown, hidden = visible_engines(engines, offline_max_age, now)
    if fold_after is None:
        return EngineRows(shown, hidden, [])
    listed: list[EngineView] = []
    folded: list[EngineView] = []
    for engine in shown:
        ended = ended_cleanly(engine) and (
            engine.last_seen is None or now - engine.last_seen >= fold_after
        )
        (folded if ended else listed).append(engine)
    return EngineRows(listed, hidden, folded)


def observe_connection(connection: ConnectionView, connected: bool, now: float) -> None:
    """Record whether the reader's broker connection is up at ``now``."""
    if connection.since is None:
        connection.connected, connection.since = connected, now
    elif connected != connection.connected:
        if not connected:
            connection.losses += 1
        connection.connected, connection.since = connected, now
