"""What vouches that a message's source runs the run it speaks of, as the recorder tells it.

A run's first speaker is believed no more than the next (as the live readers do: see
``cascade.reader``): a source something vouches for takes over a run first heard from
one nothing vouched for, and the history keeps what the first said apart (``run_claims``).
What vouches, in the words stored in ``runs.vouched``: the run's start (``ENGINE_STARTED`` with
``seq`` 1), a topic that names the source (the sourced layout: what a broker ACL binds), or the
source's ``online`` status.
"""

from __future__ import annotations

from cascade.interfaces import Envelope, LifecycleEvent, StatusMessage, decode_level

__all__ = ["MAX_STATUSES", "VOUCHES", "Vouches"]

VOUCHES = ("start", "topic", "online")
"""What can vouch for a run's source, as ``runs.vouched`` says it."""
MAX_STATUSES = 100_000
"""Sources whose presence the recorder keeps in mind; beyond, the one heard of least recently
goes (it vouches for nothing until its status comes again)."""


class Vouches:
    """The sources online as their statuses last said (bounded), and the verdict on a message."""

    def __init__(self, max_statuses: int = MAX_STATUSES) -> None:
        self._online: dict[str, bool] = {}
        self._max = max_statuses

    def status(self, topic: str, status: StatusMessage) -> None:
        """A source's status (``topic``'s last level names it when the payload does not)."""
        source = status.source or decode_level(topic.rsplit("/", 1)[-1])
        online = self._online
        online.pop(source, None)  # to the end: heard last
        if len(online) >= self._max:
            del online[next(iter(online))]
        online[source] = status.status == "online"

    def of(self, envelope: Envelope, sourced: bool) -> str | None:
        """What vouches for ``envelope``'s source as its run's engine (``None``: its word only);
        ``sourced``: it came on a topic naming its source."""
        if sourced:
            return "topic"
        body = envelope.body
        if isinstance(body, LifecycleEvent) and body.event == "ENGINE_STARTED":
            return "start" if envelope.seq == 1 else None
        return "online" if self._online.get(envelope.source) else None
