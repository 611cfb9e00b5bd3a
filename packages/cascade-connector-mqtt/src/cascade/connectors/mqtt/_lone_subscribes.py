"""SUBSCRIBEs that lose the connection: subscribed one at a time, given up after a few losses.

RabbitMQ 3.x closes the connection on a SUBSCRIBE its topic permissions deny,
where other brokers answer 0x80 in the SUBACK. Resubscribing every filter at
once would then lose every connection, and every other subscription with it.
So, as the sender does with a message (see ``_buffer.py``), a connection lost
with a SUBSCRIBE outstanding makes the next connections subscribe one filter
per SUBSCRIBE, and a filter whose lone SUBSCRIBE lost the connection
``max_losses`` times is given up: no longer subscribed at the broker.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LoneSubscribes"]


class LoneSubscribes:
    """What lost connections with a SUBSCRIBE outstanding taught: which filters to avoid.

    :attr:`one_at_a_time`: subscribe each filter alone (set by such a loss,
    cleared once a connection has all its filters answered). A filter's count
    of losses alone starts again from zero once the broker answers it.
    Nothing here expires: a given-up filter stays so until it is no longer used.
    """

    def __init__(self, max_losses: int = 3) -> None:
        self.max_losses = max_losses
        self.one_at_a_time = False
        self._losses: dict[str, int] = {}  # filter → connections lost with it alone outstanding
        self._given_up: set[str] = set()

    def is_given_up(self, topic_filter: str) -> bool:
        """Whether ``topic_filter`` is no longer subscribed at the broker."""
        return topic_filter in self._given_up

    def lost(self, unanswered: tuple[str, ...]) -> str | None:
        """A connection was lost with SUBSCRIBEs of ``unanswered`` outstanding.

        Returns the filter given up now, if this was the ``max_losses``-th loss
        with it alone outstanding.
        """
        if not unanswered:
            return None
        self.one_at_a_time = True
        if len(unanswered) > 1:
            return None  # any of them, or none: the next connections subscribe them alone
        (topic_filter,) = unanswered
        losses = self._losses[topic_filter] = self._losses.get(topic_filter, 0) + 1
        if losses < self.max_losses:
            return None
        del self._losses[topic_filter]
        self._given_up.add(topic_filter)
        return topic_filter

    def answered(self, filters: Iterable[str]) -> None:
        """The broker answered a SUBSCRIBE of ``filters``: their counts start again."""
        for topic_filter in filters:
            self._losses.pop(topic_filter, None)

    def resubscribed(self) -> None:
        """A connection has every filter answered: one SUBSCRIBE may carry them all again."""
        self.one_at_a_time = False
        self._losses.clear()

    def forget(self, topic_filter: str) -> None:
        """``topic_filter`` is no longer used: a later subscription to it is tried afresh."""
        self._given_up.discard(topic_filter)
        self._losses.pop(topic_filter, None)
