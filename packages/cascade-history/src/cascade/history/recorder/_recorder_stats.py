"""A recorder's counters: what became of every message it received."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RecorderStats"]


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """A recorder's counters at one moment.

    ``received``: messages delivered to it (an engine's snapshot counts as the task events it
    lists, each stored as the event it was). Each ends up in one of:
    ``stored`` (new to the history), ``duplicates`` (the history had it),
    ``rejected`` (not the protocol: undecodable, oversized, or a value the
    database refused; a cancel's answer from another source than its run's engine, or for
    a run the history does not know; never stored), ``refused`` (what no engine of its run
    can have sent: another source's, a conflict, a number out of bounds, a timestamp
    ahead; never stored, counted per run in the history) or ``dropped`` (valid, but lost: the queue
    was full, or it was still unwritten when the recorder stopped), or is
    still ``queued``. ``lag``: seconds the oldest message not yet written has
    waited (0 when all are written). ``write_errors``: writes that failed and
    were retried; ``last_error`` the latest one's message. ``gaps``: events
    that never reached the recorder, counted from their runs' ``seq`` numbers
    (net of late copies that filled a hole), since it started. ``unfollowed``: runs it
    stopped following before their end to follow newer ones (it follows ``max_followed``
    at once): a gap of theirs after that is not in ``gaps`` (the history's
    ``missing_events`` of the run still counts it). ``ends_from_summaries``: runs whose end
    fell while it was away (a reconnection), stored as their engines' retained summaries
    listed them (each such end, and the heartbeat with its last event's number, counts as a
    message received); a summary refused counts as received and refused. ``behind``: whether
    its queue holds a tenth of ``max_queue`` or more, and has not yet gone back under a
    fiftieth of it (it keeps up no longer, and drops once the queue is full: said in a warning
    as it happens), or its connector shed messages within the last 10 seconds (``shed``: what
    the connector discarded unread, the recorder too slow to read what the broker delivered:
    never received, so counted in no other field, but in ``gaps``); ``times_behind``: how
    many times its queue fell behind since it started.
    """

    received: int
    stored: int
    duplicates: int
    rejected: int
    dropped: int
    queued: int
    lag: float
    write_errors: int
    last_error: str | None
    gaps: int = 0
    refused: int = 0
    unfollowed: int = 0
    ends_from_summaries: int = 0
    behind: bool = False
    times_behind: int = 0
    shed: int = 0
