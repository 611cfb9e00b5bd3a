"""Run ids as people see and give them: the short form every view shows, and a prefix turned
into the one run it names, from the history and from the live telemetry.

Whatever takes a run id (`cascade cancel`, `why`, `run`, the dashboard's cancel and history
run) reads it with :func:`checked_prefix` and resolves it with :func:`one_run`; a whole id
(32 hex digits) is taken as it is, at no cost. Over a broker, :func:`find_run` asks what is
known at once first (the engines' retained summaries list their live runs, the history its
recorded ones) and listens for live runs only when that does not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cascade.interfaces import (
    Connector,
    InvalidMessageError,
    Message,
    same_source,
)
from cascade.interfaces.commands import ControlError
from cascade.interfaces.summaries import (
    SummaryRun,
    decode_summary,
    misplaced_runs,
    summary_filter,
)
from cascade.interfaces.wire import is_full
from cascade.reader import ROLLCALL_WAIT, Place

__all__ = [
    "LIVE_WAIT",
    "RECORDED_READ",
    "SHORT_ID",
    "HeardRuns",
    "Listed",
    "Recorded",
    "find_run",
    "heard_run_ids",
    "listed_runs",
    "live_wait",
    "one_run",
    "short_id",
]

SHORT_ID = 12
"""How many leading digits of a run id every table and view shows (any of them works as
the id in every command)."""
LIVE_WAIT = 5.0
"""How long a prefix is listened for at most: one heartbeat interval, in which every live
run says its id (the timeout when shorter)."""

RECORDED_READ = 1000
"""Ids read from a history for one prefix at most (``cascade.history.recorded_in``)."""

_NAMED = 5  # matches an ambiguous prefix names


def short_id(run_id: str) -> str:
    """``run_id`` as every table and view shows it: its first :data:`SHORT_ID` characters."""
    return run_id[:SHORT_ID]


def live_wait(timeout: float) -> float:
    """How long to listen for the live runs a prefix may name: :data:`LIVE_WAIT` at most."""
    return min(LIVE_WAIT, timeout)


@dataclass(frozen=True)
class Recorded:
    """The recorded runs a prefix may name: their ids (at most 1,000), and where the history
    is (``None``: there is none)."""

    ids: list[str] = field(default_factory=list)
    location: str | None = None

    @property
    def capped(self) -> bool:
        """Whether the history may have more of them than were read."""
        return len(self.ids) >= RECORDED_READ


def one_run(prefix: str, *known: Iterable[str], more: bool = False) -> str | None:
    """The one id among ``known`` (live and recorded ids, say) that starts with ``prefix``;
    ``None`` when none does; :class:`ControlError` naming them when several do (``more``: there
    may be others than those given)."""
    found = sorted({run_id for ids in known for run_id in ids if run_id.startswith(prefix)})
    if len(found) == 1:
        return found[0]
    if not found:
        return None
    shorts = {short_id(run_id) for run_id in found}
    named = [
        short_id(run_id) if len(shorts) == len(found) and len(prefix) < SHORT_ID else run_id
        for run_id in found[:_NAMED]
    ]
    rest = len(found) - len(named)
    tail = (f" and {'at least ' if more else ''}{rest} more") if rest else ""
    raise ControlError(
        f"several runs' ids start with {prefix!r}: {', '.join(named)}{tail}; give more of it",
        "run_id",
    )


class HeardRuns:
    """A telemetry callback that keeps the ids of the runs heard that start with a prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ids: set[str] = set()

    def __call__(self, message: Message) -> None:
        """Keep the message's run id if it starts with the prefix."""
        self.take(message)

    def take(self, message: Message) -> str | None:
        """The message's run id when it starts with the prefix (kept), else ``None``."""
        run_id = message.payload.get("run_id")
        if not isinstance(run_id, str) or not run_id.startswith(self.prefix):
            return None
        self.ids.add(run_id)
        return run_id


async def heard_run_ids(
    connector: Connector, prefix: str, wait: float, place: Place | None = None
) -> set[str]:
    """The ids of the runs heard on ``connector`` within ``wait`` seconds that start with
    ``prefix`` (of ``place`` only, if given: the org and project a login may read)."""
    heard = HeardRuns(prefix)
    topic_prefix = connector.topic_prefix
    topics = (place or Place()).telemetry(topic_prefix)
    handle = await connector.subscribe(topics, heard)
    try:
        await asyncio.sleep(wait)  # a window to listen in: live runs say their ids within it
    finally:
        await handle.unsubscribe()
    return heard.ids


@dataclass(frozen=True)
class Listed:
    """The runs the engines' retained summaries list, each with the source that lists it, and
    whether they are every live run (``whole``: some engine keeps a summary, none said it has
    more live runs than it lists, and the broker sends retained messages to a wildcard
    subscription; an engine that keeps none, from before summaries, is not counted on)."""

    runs: list[tuple[str, SummaryRun]] = field(default_factory=list)
    whole: bool = False
    refused: int = 0
    """Summaries refused: another source's than their topic's, or one per org and project
    listing a run of another (a run is taken from those only: an engine's own summary names
    no org, so the broker cannot bind the runs it lists)."""

    def ids(self, prefix: str) -> set[str]:
        """The ids of the listed runs that start with ``prefix``."""
        return {run.run_id for _, run in self.runs if run.run_id.startswith(prefix)}


async def listed_runs(connector: Connector, place: Place | None = None) -> Listed:
    """The runs the engines' summaries on ``connector`` list: what the broker retains, read
    at once (no waiting: a subscription returns with its retained messages); where the broker
    sends a wildcard subscription none, what the engines answer a roll call within
    :data:`~cascade.reader.ROLLCALL_WAIT`. A summary that does not decode is left
    out. With a ``place`` (an org, a project), only its summaries are read (a login over
    less than ``global`` may read no engine's own), and they are every live run there when
    one was read and none says it lists fewer."""
    place = place or Place()
    runs: list[tuple[str, SummaryRun]] = []
    read = refused = 0
    unlisted = False
    prefix = connector.topic_prefix

    def take(message: Message) -> None:
        nonlocal read, refused, unlisted
        try:
            summary = decode_summary(message.raw or message.payload)
        except InvalidMessageError:
            return
        levels = message.topic.removeprefix(prefix + "/").split("/")
        if not same_source(summary.source, levels[-1]):
            refused += 1
            return
        if len(levels) == 2:  # its own: says whether it lists every live run
            read += 1
            unlisted = unlisted or summary.more_live > 0
        elif misplaced_runs(summary, message.topic, prefix):
            refused += 1
        else:
            runs.extend((summary.source, run) for run in summary.listed)
            unlisted = unlisted or summary.more_live > 0

    placed = 0

    def take_placed(message: Message) -> None:
        nonlocal placed
        placed += 1
        take(message)

    handles = [await connector.subscribe(place.summaries(prefix), take_placed)]
    if place.everywhere:
        handles.append(await connector.subscribe(summary_filter(prefix), take))
    try:
        if await connector.call_roll():  # no retained summaries here: the engines answer live
            await asyncio.sleep(ROLLCALL_WAIT)  # nothing says when all are in
    finally:
        for handle in handles:
            await handle.unsubscribe()
    whole = (read if place.everywhere else placed) > 0 and not unlisted
    return Listed(runs, whole, refused)


async def find_run(
    connector: Connector,
    prefix: str,
    recorded: Iterable[str] = (),
    *,
    more: bool = False,
    wait: float = LIVE_WAIT,
    waiting: Callable[[float], None] | None = None,
    place: Place | None = None,
) -> str | None:
    """The whole id of the one run ``prefix`` (from :func:`checked_prefix`) names: itself when
    whole; else the one run the engines' summaries list (:func:`listed_runs`) or
    ``recorded`` holds (ids from a history, say; ``more``: it may hold others), at once; and
    only when they name none, or may not list every live run, the one heard live within
    ``wait`` seconds (``waiting`` is told first, so a face can say why it waits); with a
    ``place``, among its runs only (what a login over an org or a project may read).
    ``None`` when none does; :class:`ControlError` naming them when several do."""
    if is_full(prefix):
        return prefix
    recorded = list(recorded)
    listed = await listed_runs(connector, place)
    found = one_run(prefix, listed.ids(prefix), recorded, more=more)
    if found is not None and listed.whole:
        return found
    if waiting is not None:
        waiting(wait)
    live = await heard_run_ids(connector, prefix, wait, place)
    return one_run(prefix, listed.ids(prefix), live, recorded, more=more)
