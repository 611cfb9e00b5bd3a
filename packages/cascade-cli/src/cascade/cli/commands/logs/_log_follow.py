"""`cascade logs -f`: a run's log lines printed as they arrive, until its engine says the run
stopped (the logs' topic has no end of its own; another source's word ends nothing), or
Ctrl-C."""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO

from cascade.interfaces import (
    Connector,
    Message,
    decode_level,
    same_place,
    same_source,
    split_run_topic,
    status_filter,
)
from cascade.interfaces.logs import LogLine
from cascade.reader import (
    HeardBatch,
    LogFollower,
    Place,
    ReaderModel,
    Refusals,
    RunLogs,
    inert,
    line_matches,
)

from ...rendering._log_text import (
    dropped_note,
    earlier_note,
    line_json,
    line_text,
    missed_note,
)

__all__ = ["HELD_BYTES", "STOP_GRACE", "Followed", "LogPrinter", "follow_logs"]

STOP_GRACE = 0.3
"""Seconds `cascade logs -f` still listens after the run's ENGINE_STOPPED: its engine sends
the last lines' batch before the event, but another connection may deliver it after."""

HELD_BYTES = 8 * 1024 * 1024
"""Bytes of log batches `cascade logs -f` holds while the run's owner is not known yet (its
telemetry says it within a heartbeat, 5 s): the oldest beyond go, counted and said."""


@dataclass
class LogPrinter:
    """Prints the lines asked for (``task``, ``level``, ``since``), as text or JSON lines,
    each at most once: a line the history printed already (``(task_id, attempt)``'s highest
    ``n`` recorded) is not printed again when it arrives live."""

    task: str | None = None
    level: int = 0
    since: float | None = None
    as_json: bool = False
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    notes: IO[str] = field(default_factory=lambda: sys.stdout)
    printed: dict[tuple[str, int], int] = field(default_factory=dict)
    missed_said: dict[str, int] = field(default_factory=dict)
    """Per task, the lines said missing so far (a gap a drop said earlier explains is not)."""
    shown: int = 0
    """The lines printed so far."""
    joined: set[str] = field(default_factory=set)
    """The tasks heard live (their lines are numbered across attempts): a first line after
    others the history did not print says how many were."""

    def wanted(self, line: LogLine, stamp: float | None) -> bool:
        """Whether ``line`` (logged at ``stamp``, epoch seconds) is one of those asked for."""
        if self.since is not None and stamp is not None and stamp < self.since:
            return False
        return line_matches(line, self.task, self.level)

    def lines(self, lines: list[tuple[LogLine, str, str]]) -> None:
        """Print ``(line, run_id, source)``s not printed yet, in one write."""
        text = []
        for line, run_id, source in lines:
            key = (line.task_id, line.attempt)
            if line.n:
                if line.n <= self.printed.get(key, 0):
                    continue
                self.printed[key] = line.n
            text.append(line_json(line, run_id, source) if self.as_json else line_text(line))
        self.shown += len(text)
        self._write(self.out, text)

    def batch(
        self,
        heard: HeardBatch,
        stamp: Callable[[LogLine], float | None],
        run: RunLogs | None = None,
    ) -> None:
        """What one live batch added: its lines asked for, and where lines of the tasks asked
        for are missing, why: dropped by the engine (as it says), or missing, each line once
        whichever batch said what (``run``: the follower's counts of the run, which set the
        drops a task's engine said against the gaps in its numbers; without it, this batch's
        drops only)."""
        said: dict[str, int] = {}
        notes = []
        for dropped in heard.dropped:
            said[dropped.task_id] = said.get(dropped.task_id, 0) + dropped.lines
            if self.of_task(dropped.task_id, dropped.task_name):
                notes.append(dropped_note(dropped.task_name, dropped.lines, dropped.reason))
        for h in heard.lines:  # each task's first line heard: after others no history printed?
            task_id = h.line.task_id
            if task_id in self.joined:
                continue
            self.joined.add(task_id)
            before = max((n for (t, _), n in self.printed.items() if t == task_id), default=0)
            if h.line.n > before + 1 and self.of_task(task_id, h.line.task_name):
                notes.append(earlier_note(h.line.task_name, h.line.n - 1 - before))
        for task_id, task_name, gap in heard.missing:
            counts = run.tasks.get(task_id) if run is not None else None
            if counts is None:
                unexplained = gap - said.get(task_id, 0)
            else:  # what the engine has not said it dropped, of every gap so far, not told yet
                unexplained = counts.missed - self.missed_said.get(task_id, 0)
                self.missed_said[task_id] = max(counts.missed, self.missed_said.get(task_id, 0))
            if unexplained > 0 and self.of_task(task_id, task_name):
                notes.append(missed_note(task_name, unexplained))
        self._write(self.notes, notes)
        self.lines(
            [
                (h.line, h.run_id, h.source)
                for h in heard.lines
                if self.wanted(h.line, stamp(h.line))
            ]
        )

    def note(self, text: str) -> None:
        """One line of its own among the notes (where dropped and missing lines are said)."""
        self._write(self.notes, [text])

    def of_task(self, task_id: str, task_name: str) -> bool:
        """Whether ``task_id`` (named ``task_name``) is one of the tasks asked for."""
        probe = LogLine(ts="", task_id=task_id, task_name=task_name, message="")
        return line_matches(probe, self.task)

    def _write(self, out: IO[str], text: list[str]) -> None:
        if text:
            out.write("\n".join(text) + "\n")
            out.flush()


class _Held:
    """The run's log batches waiting for the run's owner to be known (the source its
    telemetry is taken from, as every view takes it: :meth:`ReaderModel.run_owner`), or for
    its owner heard first to be taken over by the one they came from; at most
    :data:`HELD_BYTES` of them (the oldest go, counted)."""

    def __init__(self) -> None:
        self.messages: deque[Message] = deque()
        self.size = 0
        self.let_go = 0

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self.size += len(message.raw)
        while self.size > HELD_BYTES and len(self.messages) > 1:
            self.size -= len(self.messages.popleft().raw)
            self.let_go += 1

    def take(self, ready: Callable[[Message], bool]) -> list[Message]:
        """The held messages ``ready`` now lets through, in the order heard."""
        taken: list[Message] = []
        kept: deque[Message] = deque()
        for message in self.messages:
            (taken if ready(message) else kept).append(message)
        if taken:
            self.messages = kept
            self.size = sum(len(m.raw) for m in kept)
        return taken


async def follow_logs(
    connector: Connector,
    run_id: str,
    printer: LogPrinter,
    recorded: Callable[[], Awaitable[None]],
    stamp: Callable[[LogLine], float | None],
    stop_grace: float = STOP_GRACE,
    following: Callable[[], None] | None = None,
    place: Place | None = None,
) -> Followed:
    """Print ``run_id``'s lines as they arrive, after ``recorded()`` printed the history's
    (what arrives meanwhile waits, then goes through the printer's dedupe), until
    ``stop_grace`` seconds after the run's ENGINE_STOPPED; returns what it followed.
    ``following()`` is called once the broker has acknowledged every subscription, before
    the history is read: a line logged from then on is heard.

    A line is believed from the run's owner only, as every view takes it from the run's
    telemetry and the engines' statuses (a run's logs alone say nothing of whose it is:
    whoever is first heard there is no more its engine than anyone): lines of the run that
    come before its owner is known wait for it (its start, or a heartbeat within 5 s), and
    those of another source wait while the owner is one nothing vouches for (a source
    something vouches for takes the run over, as in the views); at the end, those still
    waiting are counted refused (``foreign source``)."""
    prefix = connector.topic_prefix
    runs = ReaderModel(prefix=prefix)  # the run's owner and end, as every reader takes them

    def owner(of_run: str) -> str | None:
        known = runs.run_owner(of_run)
        return None if known is None else known[0]

    logs = LogFollower(prefix=prefix, keep_lines=0, max_runs=1, owner=owner)
    held: list[HeardBatch] | None = []  # what arrives while the history is read
    waiting = _Held()  # what arrives before its source is the run's owner
    last_owner: list[tuple[str, bool] | None] = [None]  # the run's owner as last looked at
    done = asyncio.Event()
    ending: list[asyncio.TimerHandle] = []
    counted_lines: list[int | None] = [None]  # the lines its engine says the run logged
    doubted: set[str] = set()
    loop = asyncio.get_running_loop()

    def topic_source(message: Message) -> str | None:
        """The source a batch's topic names (the sourced layout, what a broker ACL binds)."""
        split = split_run_topic(message.topic, prefix)
        return None if split is None or split[1] is None else decode_level(split[1])

    def claimed(message: Message) -> object:
        """The source a batch claims: its topic's, else its payload's."""
        return topic_source(message) or message.payload.get("source")

    def ready(message: Message) -> bool:
        known = runs.run_owner(run_id)
        if known is None:  # the run's telemetry says whose it is: its logs do not
            return False
        source, confirmed = known
        return confirmed or claimed(message) == source

    def fold(message: Message) -> None:
        before = logs.taken_over
        heard = logs.apply(message)
        if logs.taken_over != before and logs.last_taken_from is not None:
            printer.note(
                f"the lines above from {inert(logs.last_taken_from, 200)} were not from the "
                "run's engine (something vouches for another): refused from now on"
            )
        if heard is None or heard.run_id != run_id:
            return
        if held is not None:
            held.append(heard)
        else:
            printer.batch(heard, stamp, logs.runs.get(run_id))

    def on_logs(message: Message) -> None:
        if ready(message):
            fold(message)
        else:
            waiting.add(message)

    def on_telemetry(message: Message) -> None:
        known = run_id in runs.runs
        runs.apply(message)
        owned = runs.run_owner(run_id)
        if owned is not None and owned != last_owner[0]:  # what waits is looked at anew
            last_owner[0] = owned
            for message_held in waiting.take(ready):
                fold(message_held)
        source = _stopped_by(message, run_id, prefix)
        if source is None or ending:
            return
        logged, run = logs.runs.get(run_id), runs.runs.get(run_id)
        # the end said by the run's owner: the source its lines came from; before any line,
        # one something vouches for (its start seen, a sourced topic) or heard before its end.
        # A stop out of nowhere, or another source's, ends nothing.
        if logged is not None:
            believed = source == logged.source
        elif run is None:
            believed = False
        else:
            believed = run.finished and run.source == source and (run.confirmed or known)
        if believed:
            told = message.payload["body"].get("log_lines")
            counted_lines[0] = told if isinstance(told, int) and told >= 0 else None
            ending.append(loop.call_later(stop_grace, done.set))
        elif source not in doubted:
            doubted.add(source)
            printer.note(
                f"the run's end as {inert(source, 200)} says it, which nothing vouches for as "
                "its engine (no line of the run came from it, nor anything before its end): "
                "still following (Ctrl-C ends)"
            )

    # the statuses first: one that vouches for a source is known before its run's messages
    await connector.subscribe(status_filter(prefix), on_telemetry)
    place = place or Place()  # a login over less than global reads its org's or project's
    await connector.subscribe(place.logs(prefix, run_id), on_logs)
    await connector.subscribe(place.telemetry(prefix, run_id), on_telemetry)
    if following is not None:
        following()
    await recorded()
    heard_meanwhile, held = held or [], None
    for heard in heard_meanwhile:
        printer.batch(heard, stamp, logs.runs.get(run_id))
    await done.wait()
    for message in waiting.messages:  # never the owner's: refused, as it is known now
        logs.apply(message)
    return Followed(logs, waiting.let_go, counted_lines[0], runs.refusals)


@dataclass(frozen=True)
class Followed:
    """What `cascade logs -f` followed: the follower (its counts of what was missed and
    refused), the batches let go unshown while they waited for the run's owner to be
    known (more than :data:`HELD_BYTES` of them), and the lines the run's engine says its
    tasks logged (``None``: it did not say, or the run's end was not heard); ``telemetry``:
    what was refused of the run's telemetry (a forged end among it), by the source claimed."""

    logs: LogFollower
    let_go: int = 0
    logged: int | None = None
    telemetry: Refusals = field(default_factory=Refusals)

    def unreceived(self, run_id: str, printed: dict[tuple[str, int], int]) -> int | None:
        """Of the lines the engine says the run logged, those neither heard live nor
        ``printed`` from the history (``(task_id, attempt)``'s highest ``n``), nor said
        dropped or missing: each task's lines up to the last number known of it are
        accounted for, the rest were logged before this listened (``None``: not told)."""
        if self.logged is None:
            return None
        last: dict[str, int] = {}
        for (task_id, _), n in printed.items():
            last[task_id] = max(last.get(task_id, 0), n)
        run = self.logs.runs.get(run_id)
        for task_id, counts in (run.tasks if run is not None else {}).items():
            last[task_id] = max(last.get(task_id, 0), counts.last_n)
        return max(0, self.logged - sum(last.values()))


def _stopped_by(message: Message, run_id: str, prefix: str) -> str | None:
    """The source ``message`` claims if it is ``run_id``'s ``ENGINE_STOPPED`` on a topic of
    that source (where its topic names one), org and project, else ``None``: the topic is what
    a broker ACL binds to the sender's login, so one naming another is forged (the run model
    counts it refused)."""
    payload = message.payload
    body = payload.get("body")
    split = split_run_topic(message.topic, prefix)  # an event, on either layout
    if split is None or split[0] != "events" or not isinstance(body, dict):
        return None
    if body.get("event") != "ENGINE_STOPPED" or payload.get("run_id") != run_id:
        return None
    source, org, project = payload.get("source"), payload.get("org_id"), payload.get("project_id")
    if not (isinstance(source, str) and isinstance(org, str) and isinstance(project, str)):
        return None
    if split[1] is not None and not same_source(source, split[1]):
        return None
    return source if same_place(message.topic, org, project, prefix) else None
