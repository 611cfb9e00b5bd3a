"""The tasks held for a decision, fleet-wide, from the live telemetry: the live runs the
engines' retained summaries list (of engines online) are asked for their state at once, every
one of them while they are few (a summary is at most a second old: a task held since is not
counted in it yet), those it counts held tasks in otherwise; only when the summaries may not
list every live run, a listening window as long as an engine's heartbeat period (every run
says what it holds in it) finds the others; then the snapshots asked for are awaited (each
held task's error, which heartbeats do not carry).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from dataclasses import dataclass
from typing import Any

from cascade.connector_kit import bounded
from cascade.control.run_ids import listed_runs, live_wait, short_id
from cascade.interfaces import (
    Message,
    decode_level,
    same_place,
    same_source,
    split_run_topic,
    status_filter,
)
from cascade.reader import HeldTask, Place, ReaderModel, SnapshotAsker, held_tasks

__all__ = ["ASK_EVERY_LIVE_RUN", "HeldFilters", "incomplete_said", "listen_for_held"]

ASK_EVERY_LIVE_RUN = 100
"""Live runs the summaries list up to which each is asked for its state, held tasks counted in
its summary or not; beyond, those it counts held tasks in and those heard holding some."""


@dataclass(frozen=True)
class HeldFilters:
    """Which held tasks a command is about: of ``org`` and ``project`` (exact), whose name or
    id matches the glob ``task``, whose error holds ``error`` (any case)."""

    org: str | None = None
    project: str | None = None
    task: str | None = None
    error: str | None = None

    @property
    def place(self) -> Place:
        """The org and project whose runs are read (what a scoped login may read)."""
        return Place(self.org, self.project)

    def __call__(self, held: HeldTask) -> bool:
        if self.org is not None and held.org_id != self.org:
            return False
        if self.project is not None and held.project_id != self.project:
            return False
        if self.task is not None and not (
            held.task_id == self.task or fnmatch.fnmatchcase(held.name, self.task)
        ):
            return False
        return self.error is None or self.error.casefold() in held.error.casefold()

    def picked(self, state: ReaderModel) -> list[HeldTask]:
        """The held tasks ``state`` knows of (:func:`~cascade.reader.held_tasks`)
        that these filters pick, the longest held first."""
        return [held for held in held_tasks(state) if self(held)]


async def listen_for_held(
    connector: Any, state: ReaderModel, filters: HeldFilters, timeout: float
) -> list[str]:
    """Fold the fleet's telemetry (of ``filters``' org and project) into ``state``, asking
    runs for a snapshot once: at once, the live runs the engines' summaries list (of engines
    not offline; every one while they are at most :data:`ASK_EVERY_LIVE_RUN`, else those they
    count held tasks in), and those heard holding tasks; when the summaries may not list every
    live run, the runs heard within one heartbeat period (:func:`~cascade.control.live_wait`
    of ``timeout``) too; then wait, at most ``timeout`` more, for the snapshots asked for, every
    part of each. Returns the runs whose answer did not come whole in time: their held tasks
    may not all be listed."""
    prefix = state.prefix = connector.topic_prefix
    state.ask = SnapshotAsker(connector).ask
    asked: set[str] = set()
    answered: dict[str, asyncio.Event] = {}

    def on_message(message: Message) -> None:
        state.apply(message)
        split = split_run_topic(message.topic, prefix)
        levels = message.topic.removeprefix(f"{prefix}/telemetry/").split("/")
        run = state.runs.get(decode_level(levels[2])) if split is not None else None
        if split is None or run is None:
            return
        run_id = run.run_id
        if (
            split[0] == "snapshot"
            and run_id in answered
            and run.answer_key is None
            and its_own(message, run.org_id, run.project_id, run.source)
        ):
            answered[run_id].set()  # every part of its answer is in (a big one comes in several)
        if run.held_tasks():
            ask(run_id, run.source)

    def ask(run_id: str, source: str) -> None:
        if run_id not in asked:
            asked.add(run_id)
            answered[run_id] = asyncio.Event()
            state.request_snapshot(run_id, 0, source)

    def its_own(message: Message, org: str, project: str, source: str) -> bool:
        """Whether ``message`` is on a topic of the run's org, project and owner, and says it
        is the owner's: what the model takes as its answer; another's (refused by the
        model, counted) ends no wait for it."""
        split = split_run_topic(message.topic, prefix)
        level = split[1] if split is not None else None
        return (
            same_place(message.topic, org, project, prefix)
            and (level is None or same_source(source, level))
            and message.payload.get("source") == source
        )

    topics = filters.place.telemetry(prefix)
    handles = [
        await connector.subscribe(status_filter(prefix), state.apply),  # who is online
        await connector.subscribe(topics, on_message),
    ]
    try:
        listed = await listed_runs(connector, filters.place)
        live = [
            (source, run)
            for source, run in listed.runs
            if run.status == "Running"
            and filters.org in (None, run.org_id)
            and filters.project in (None, run.project_id)
            and (source not in state.engines or state.engines[source].online)
        ]
        every = len(live) <= ASK_EVERY_LIVE_RUN
        for source, run in live:
            if every or run.tasks.held:
                ask(run.run_id, source)
        if not listed.whole:
            await asyncio.sleep(live_wait(timeout))  # every live run heartbeats within it
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(timeout):
                for event in list(answered.values()):
                    await event.wait()
    finally:
        for handle in handles:
            await handle.unsubscribe()
    return sorted(run_id for run_id, whole in answered.items() if not whole.is_set())


def incomplete_said(partial: list[str], timeout: float) -> str:
    """What the runs ``partial`` (from :func:`listen_for_held`) leave out, in one line."""
    return (
        f"the held tasks of {len(partial)} run(s) may not all be listed: their engine's answer "
        f"did not come whole within {timeout:g} s "
        f"({', '.join(short_id(run_id) for run_id in partial[:5])})"
    )
