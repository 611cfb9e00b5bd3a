"""A reader's asking: a run's engine asked for the run's state, each run's at most so often."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec

from cascade.interfaces import Connector
from cascade.interfaces.commands import SnapshotRequest, snapshot_request_topic

__all__ = ["SnapshotAsker"]

_log = logging.getLogger("cascade.reader.asker")
_ASKED_KEPT = 10_000  # runs an asker remembers asking about (the oldest are forgotten)


class SnapshotAsker:
    """Sends a reader's snapshot requests, each run's at most once every ``again_after`` s.

    :meth:`ask` is synchronous (a reader's model calls it while it folds a message in):
    it hands the request to the connector in a task of its own and returns at once.
    A run asked about within ``again_after`` seconds is not asked again, so a reader
    that keeps finding holes, or an engine that never answers (gone, or older than
    snapshots), costs a request every few seconds at most. :attr:`asked` counts the
    requests sent; :attr:`failed` those the connector refused.
    """

    def __init__(
        self,
        connector: Connector,
        prefix: str | None = None,
        *,
        again_after: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        self._prefix = prefix if prefix is not None else connector.topic_prefix
        self._again_after = again_after
        self._clock = clock
        self._asked_at: dict[str, float] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.asked = 0
        self.failed = 0

    def ask(self, run_id: str, after: int = 0) -> bool:
        """Ask for ``run_id``'s state after event ``after``; ``False`` if asked too recently."""
        now = self._clock()
        last = self._asked_at.pop(run_id, None)
        if last is not None and now - last < self._again_after:
            self._asked_at[run_id] = last
            return False
        self._asked_at[run_id] = now  # the newest last: the oldest go first
        if len(self._asked_at) > _ASKED_KEPT:
            del self._asked_at[next(iter(self._asked_at))]
        payload = msgspec.json.encode(SnapshotRequest(run_id=run_id, after=after))
        task = asyncio.get_running_loop().create_task(
            self._send(snapshot_request_topic(run_id, self._prefix), payload)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        self.asked += 1
        return True

    async def _send(self, topic: str, payload: bytes) -> None:
        try:
            await self._connector.publish(topic, payload, qos=1)
        except Exception as exc:  # a reader goes on without the answer, and says it is partial
            self.failed += 1
            _log.debug("snapshot request on %s not sent: %s", topic, exc)

    async def aclose(self) -> None:
        """Wait for the requests being handed to the connector."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
