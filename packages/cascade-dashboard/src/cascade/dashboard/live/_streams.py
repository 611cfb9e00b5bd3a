"""The live streams, who may open one, and what they send.

A stream asked with ``since`` (the page's) sends changes (``_deltas``): a snapshot of the
page's view, then what changed in it, at most once per :data:`STREAM_INTERVAL`. One asked
without (a script written before) sends the whole state when it changed, as it always did:
one serialised state per view, shared by every such stream. Who may open one, and how many
each person may: ``_fair_share`` (:class:`StreamSlots`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..auth._decide_scope import decidable
from ._deltas import STREAM_INTERVAL, Follower
from ._fair_share import (
    MAX_HOLDER_STREAMS,
    MAX_STREAMS,
    MAX_STREAMS_PER_CLIENT,
    MAX_STREAMS_PER_PERSON,
    Slot,
    StreamSlots,
)
from ._hub import DashboardHub

__all__ = [
    "BEHIND_AFTER",
    "KEEPALIVE",
    "MAX_OWING",
    "MAX_HOLDER_STREAMS",
    "MAX_STREAMS",
    "MAX_STREAMS_PER_CLIENT",
    "MAX_STREAMS_PER_PERSON",
    "Snapshots",
    "StreamSlots",
    "change_events",
    "stream_events",
    "tick_event",
]

#: A stream is never silent longer than KEEPALIVE seconds: when nothing changed it sends a small
#: tick (the time, the connection); what changed goes at most once per STREAM_INTERVAL
#: (:mod:`._deltas`).
KEEPALIVE = 1.0
#: A stream looks for a tick to send this long after its last event, so that with the loop's
#: turn and one interval's sleep it is still within KEEPALIVE.
_TICK_AFTER = KEEPALIVE - STREAM_INTERVAL
BEHIND_AFTER = 2 * KEEPALIVE
"""Seconds an event may take to go out (a page, or its network, that reads slowly holds the
stream back) before the page counts as behind: it gets one fresh snapshot next, not what it
owes piece by piece."""
MAX_OWING = 8
"""Events in a row that left changes owed (each cut at its batch) before the page counts as
behind: a view changing by more than a batch at every look is sent afresh, once."""

_STATE = b"event: state\ndata: "
_RUNS_KEPT = 64  # runs' details kept at once (any ?run= can be asked for)
# A view is built again at most once per this many times what its last build took: building a
# big run's detail (20,000 segments) 4 times a second would take the loop from the messages.
_BUILD_SHARE = 10


@dataclass(frozen=True)
class Built:
    """One view's state, serialised once: ``frame`` is the stream's event, ``body`` the JSON."""

    version: int
    at: float
    frame: bytes
    took: float = 0.0  # seconds the build took

    @property
    def body(self) -> bytes:
        """The state as ``/api/state`` answers it."""
        return self.frame[len(_STATE) : -2]


class Snapshots:
    """The state of each view (the run list, or one ``?run=``), built once for every reader.

    A view is built again only once the model moved on *and* the last build is older than
    ``max_age`` (and than ten times what that build took, so that building never takes more
    than a tenth of the loop from reading messages), so however many streams wake at once,
    each view costs one build and one serialisation per interval; the big part, a run's
    detail, is built once per model version however often it is asked for.
    """

    def __init__(
        self,
        hub: DashboardHub,
        *,
        controls: bool,
        max_age: float = STREAM_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.controls = controls
        self.max_age = max_age
        self.clock = clock
        self.builds = 0
        self._views: dict[str | None, Built] = {}
        self._runs: dict[str, tuple[int, bytes]] = {}

    def get(self, run_id: str | None, *, current: bool = True) -> Built:
        """The view's shared state; with ``current``, one of the model's present version."""
        now = self.clock()
        built = self._views.get(run_id)
        if (
            built is not None
            and now - built.at < max(self.max_age, built.took * _BUILD_SHARE)
            and (not current or built.version == self.hub.model.version)
        ):
            return built
        version = self.hub.model.version
        snapshot = self.hub.model.snapshot()
        snapshot["connection"] = self.hub.connection()
        snapshot["controls"] = self.controls
        snapshot["held"] = self.hub.model.held.listed(None, decidable(None, self.controls))
        head = json.dumps(snapshot).encode()[:-1]  # "run" goes last, spliced in as bytes
        run = self._run(run_id, version) if run_id else b"null"
        frame = b"".join((_STATE, head, b', "run": ', run, b"}\n\n"))
        self.builds += 1
        self._views = {k: v for k, v in self._views.items() if now - v.at < self.max_age}
        built = self._views[run_id] = Built(version, now, frame, self.clock() - now)
        return built

    def _run(self, run_id: str, version: int) -> bytes:
        """One run's detail as JSON: it depends on the model alone, so it is kept per version."""
        kept = self._runs.get(run_id)
        if kept is not None and kept[0] == version:
            return kept[1]
        detail = json.dumps(self.hub.model.run_detail(run_id)).encode()
        if len(self._runs) >= _RUNS_KEPT:
            self._runs = {k: v for k, v in self._runs.items() if v[0] == version}
        self._runs[run_id] = (version, detail)
        return detail

    def tick(self) -> bytes:
        """The event that keeps a page's clock and connection state current."""
        return tick_event(self.hub)


async def stream_events(
    hub: DashboardHub, snapshots: Snapshots, run_id: str | None, slot: Slot
) -> AsyncIterator[bytes]:
    """A page's stream: the view's shared state when the model changed, else a tick."""
    yield b"retry: 2000\n\n"
    sent: int | None = None
    while not hub.closing.is_set() and not slot.ended.is_set():
        if sent is not None:
            await hub.wait_change(sent, _TICK_AFTER)
            if hub.closing.is_set() or slot.ended.is_set():
                return
        if sent is None or hub.model.version != sent:
            built = snapshots.get(run_id, current=False)
            if built.version != sent:
                sent = built.version
                yield built.frame  # always the latest state: a slow page skips what it missed
            await asyncio.sleep(STREAM_INTERVAL)  # coalescing: at most 1/interval per s
        else:
            yield snapshots.tick()


async def change_events(hub: DashboardHub, follower: Follower, slot: Slot) -> AsyncIterator[bytes]:
    """A page's stream of changes: a snapshot of its view, then what changed in it, looked
    at no more than once per interval (however fast messages come), and a tick when nothing
    changed for nearly :data:`KEEPALIVE` seconds.

    A page that falls behind (an event took more than :data:`BEHIND_AFTER` seconds to go out,
    or :data:`MAX_OWING` events in a row could not say all that changed) gets one fresh
    snapshot of its view next: nothing is queued for it, and it never catches up piecemeal
    on changes that are stale by the time they arrive."""
    yield b"retry: 2000\n\n"
    loop = asyncio.get_running_loop()
    said = loop.time()
    owing = 0
    while not hub.closing.is_set() and not slot.ended.is_set():
        looked_at = hub.model.version
        event = follower.next_event()
        if event is None and loop.time() - said >= _TICK_AFTER:
            event = tick_event(hub)
        if event is not None:
            sending = loop.time()
            yield event
            said = loop.time()
            owing = owing + 1 if follower.more else 0
            if said - sending > BEHIND_AFTER or owing > MAX_OWING:
                follower, owing = follower.afresh(), 0
                continue  # its snapshot now: the page has waited long enough
        await asyncio.sleep(STREAM_INTERVAL)  # coalescing: at most 1/interval per s
        if not follower.more:
            await hub.wait_change(looked_at, max(0.0, _TICK_AFTER - (loop.time() - said)))


def tick_event(hub: DashboardHub) -> bytes:
    """The event that keeps a page's clock and connection state current."""
    tick = {"now": hub.model.clock(), "connection": hub.connection()}
    return b"event: tick\ndata: " + json.dumps(tick).encode() + b"\n\n"
