"""Which engine a run belongs to: the source the history recorded it from, or the first one
its live telemetry is heard from (the rule every reader follows, :class:`ReaderModel`); and
where the run is (its org and project, which its commands' topics name), from the topic of
that first message.

A cancel's answer counts only from the run's owner: whoever can publish can
answer, so "an engine answered" proves nothing unless the engine is the run's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cascade.interfaces import DEFAULT_PREFIX, Message, decode_level
from cascade.reader import ReaderModel

__all__ = ["HeardOwner"]


def _asked(run_id: str, after: int) -> None:
    """The model's way of asking: the requester of a command sends the request itself."""


class HeardOwner:
    """A telemetry callback that tells the owner of one run: the source its first message
    is taken from, as :class:`ReaderModel` takes it (a payload whose source is not its
    topic's, a timestamp from the future and the like are refused, as every reader does).

    ``on_known(source)`` is called once, when the owner is first heard; :attr:`place` is then
    the run's org and project as that message's topic names them (the levels a broker ACL
    binds), and :attr:`heard` is set.
    """

    def __init__(
        self,
        run_id: str,
        on_known: Callable[[str], None],
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.run_id = run_id
        self.owner: str | None = None
        self.place: tuple[str, str] | None = None
        """The run's org and project, from the topic its owner was first heard on."""
        self.heard = asyncio.Event()
        self._prefix = prefix
        self._on_known = on_known
        # asks nothing itself (its requester does): noting what was asked lets the answer in
        self._state = ReaderModel(prefix=prefix, keep_runs=None, keep_for=None, ask=_asked)

    def snapshot_asked(self) -> None:
        """The run's engine was asked for a snapshot: its answer, which says who runs the run
        (and nothing else may be heard: a refused decision changes no task), is taken too."""
        self._state.request_snapshot(self.run_id)

    def __call__(self, message: Message) -> None:
        """Fold one message of the run's telemetry in; say the owner when first heard."""
        if self.owner is not None:
            return
        self._state.apply(message)
        run = self._state.runs.get(self.run_id)
        if run is not None:
            self.owner = run.source
            # {prefix}/telemetry/{org}/{project}/{run_id}/...: the message just taken is on one
            levels = message.topic[len(self._prefix) + 1 :].split("/")
            self.place = (decode_level(levels[1]), decode_level(levels[2]))
            self.heard.set()
            self._on_known(run.source)
