"""Asking a run's engine for the run's state: the request, its topics, and a reader's asker.

A reader that joins a run late, or finds a hole in its events (``seq``), asks the engine
running the run for a :class:`~cascade.interfaces.RunSnapshot`, as Sparkplug B's hosts
ask an edge node for a rebirth. The request goes, QoS 1 and not retained, to
``{prefix}/command/{run_id}/snapshot``; the engine answers every reader at once on the
run's ``{prefix}/telemetry/{org}/{project}/{run_id}/snapshot``, which readers of the
run's telemetry already receive, at most once every :data:`SNAPSHOT_INTERVAL` seconds
(requests meanwhile share the next answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec

from ._connector import Connector
from ._constraint import convert
from ._errors import InvalidMessageError
from ._gaps import Seen
from ._limits import MAX_CONTROL_PAYLOAD_BYTES
from ._refusals import ahead
from ._schemas import MAX_SNAPSHOT_TASKS, Envelope, RunSnapshot
from ._timestamps import parse_timestamp
from ._topics import DEFAULT_PREFIX, _telemetry, encode_level

__all__ = [
    "MAX_ANSWER_TASKS",
    "MAX_SNAPSHOT_PARTS",
    "SNAPSHOT_INTERVAL",
    "SnapshotAsker",
    "SnapshotRequest",
    "answer_part_refusal",
    "answer_stamped_ahead",
    "decode_snapshot_request",
    "snapshot_events",
    "snapshot_request_topic",
    "snapshot_topic",
]

SNAPSHOT_INTERVAL = 1.0
"""Seconds between two answers of an engine for one run, whoever asks."""

MAX_SNAPSHOT_PARTS = 64
"""Parts one answer may come in at most (an engine's answer of :data:`MAX_SNAPSHOT_TASKS`
tasks takes a few, of about 192 KiB each)."""

MAX_ANSWER_TASKS = 2 * MAX_SNAPSHOT_TASKS
"""Tasks one answer may list at most, all its parts together (engines list at most
:data:`MAX_SNAPSHOT_TASKS`): what a reader takes of one answer, whoever sent it."""

_log = logging.getLogger("cascade.interfaces.snapshots")
_ASKED_KEPT = 10_000  # runs an asker remembers asking about (the oldest are forgotten)


def snapshot_request_topic(run_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/command/{run_id}/snapshot``: where the engine running ``run_id`` listens.

    No org nor project level, unlike a cancel's or a decision's topic: any reader may ask (a
    view that joined late, or one that does not know yet where the run is: its answer, on the
    run's own telemetry topic, says so), the answer goes only to those who may read that
    run's telemetry, and an engine answers a run at most once a second whoever asks."""
    return f"{prefix}/command/{encode_level(run_id)}/snapshot"


def snapshot_topic(
    org_id: str,
    project_id: str,
    run_id: str,
    prefix: str = DEFAULT_PREFIX,
    source: str | None = None,
) -> str:
    """``{prefix}/telemetry/{org}/{project}/{run_id}/snapshot``: where the engine answers
    (with ``source``: ``.../snapshot/{source}``, as :func:`events_topic`)."""
    return _telemetry(prefix, org_id, project_id, run_id, "snapshot", source)


class SnapshotRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A reader's request for ``run_id``'s state: it knows the run's events up to ``after``
    (``0``: nothing), so the answer lists the tasks whose latest event came later."""

    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    after: Annotated[int, msgspec.Meta(ge=0)] = 0


def decode_snapshot_request(data: Mapping[str, Any] | bytes | str) -> SnapshotRequest:
    """Decode and validate an untrusted snapshot request; raises :class:`InvalidMessageError`."""
    if isinstance(data, (bytes, str)) and len(data) > MAX_CONTROL_PAYLOAD_BYTES:
        raise InvalidMessageError(
            f"command payload is {len(data)} bytes; at most {MAX_CONTROL_PAYLOAD_BYTES} accepted"
        )
    return convert(data, SnapshotRequest)


def snapshot_events(envelope: Envelope) -> list[Envelope]:
    """The task events a snapshot message lists, each in the envelope its engine had sent it in
    (its ``seq`` and ``ts``); ``[]`` for any other message."""
    body = envelope.body
    if not isinstance(body, RunSnapshot):
        return []
    return [
        Envelope(
            v=envelope.v,
            ts=task.ts,
            run_id=envelope.run_id,
            org_id=envelope.org_id,
            project_id=envelope.project_id,
            source=envelope.source,
            trace_id=envelope.trace_id,
            seq=task.seq,
            body=task.event(),
        )
        for task in body.tasks
    ]


def answer_part_refusal(body: RunSnapshot, taken: int = 0) -> Seen | None:
    """Why one part of an answer is out of what an engine sends (``None``: it is not).

    At most :data:`MAX_SNAPSHOT_PARTS` parts and :data:`MAX_ANSWER_TASKS` tasks in all
    (``taken``: the tasks of the answer's earlier parts), ``part`` among ``parts``,
    ``after <= through <= last_seq``, and every task numbered in ``(after, through]``:
    :attr:`~Seen.BEYOND` or :attr:`~Seen.INCONSISTENT` otherwise.
    """
    if body.parts > MAX_SNAPSHOT_PARTS or taken + len(body.tasks) > MAX_ANSWER_TASKS:
        return Seen.BEYOND
    if body.part > body.parts or not body.after <= body.through <= body.last_seq:
        return Seen.INCONSISTENT
    low, high = body.after, body.through
    if any(not low < task.seq <= high for task in body.tasks):
        return Seen.INCONSISTENT
    return None


def answer_stamped_ahead(body: RunSnapshot, now: float) -> bool:
    """Whether a task of the answer ``body`` is stamped beyond ``MAX_CLOCK_SKEW`` ahead of
    ``now``: the answer is refused as a whole, as an envelope stamped so would be."""
    for task in body.tasks:
        stamp = parse_timestamp(task.ts)
        if stamp is not None and ahead(stamp, now):
            return True
    return False


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
