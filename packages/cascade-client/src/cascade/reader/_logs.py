"""Task logs as a reader keeps them: :class:`LogFollower` folds the runs' log batches into
their last lines, and counts what is missing (dropped by the engine, missed on the way).

Fed the messages of :func:`~cascade.interfaces.logs.logs_filter` (a run's, or many runs'), it
keeps, per run, its last :data:`DEFAULT_KEEP_LINES` lines (and at most
:data:`DEFAULT_KEEP_BYTES` of their messages), saying how many it let go; per task, how many
lines its engine said it dropped and how many went missing otherwise (gaps in ``n``); per
run, the batches it missed (gaps in ``seq``). What no engine of the run can have sent is
refused and counted (:class:`~cascade.reader.Refusals`), as the reader model does.
"""

from __future__ import annotations

import fnmatch
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from msgspec import structs

from cascade.interfaces import (
    DEFAULT_PREFIX,
    InvalidMessageError,
    Message,
    decode_level,
    same_place,
    same_source,
    split_run_topic,
)
from cascade.interfaces.logs import DroppedLines, LogBatch, LogLine, decode_log_batch
from cascade.interfaces.wire import MAX_LOG_LINE_BYTES, level_number, payload_limit

from ._bounded_text import KEPT, truncate
from ._gaps import GapCounter, Seen
from ._refusals import (
    MAX_CLOCK_SKEW,
    REASON_FUTURE,
    REASON_MISMATCH,
    REASON_NOT_ITS_PLACE,
    Refusals,
)
from ._timestamps import parse_timestamp

__all__ = [
    "DEFAULT_KEEP_BYTES",
    "DEFAULT_KEEP_LINES",
    "MAX_LOG_RUNS",
    "MAX_LOG_TASKS",
    "HeardBatch",
    "HeardLine",
    "LogFollower",
    "RunLogs",
    "TaskLogCounts",
    "cut_message",
    "line_matches",
]

DEFAULT_KEEP_LINES = 5_000
"""Lines a :class:`LogFollower` keeps per run by default (the last ones)."""
DEFAULT_KEEP_BYTES = 8 * 1024 * 1024
"""Bytes of messages a :class:`LogFollower` keeps per run by default (the last lines')."""
MAX_LOG_RUNS = 1_000
"""Runs whose logs a :class:`LogFollower` holds at once (the least recently heard go)."""
MAX_LOG_TASKS = 10_000
"""Tasks counted one by one per run; the lines of those beyond are counted under ``"…"``."""

_OTHERS = "…"


def cut_message(message: str, limit: int = MAX_LOG_LINE_BYTES) -> str:
    """``message`` if at most ``limit`` bytes in UTF-8, else its first ``limit`` bytes (whole
    characters) and how many more there were."""
    if len(message) * 4 <= limit:  # no character is more than 4 bytes: the usual case, free
        return message
    raw = message.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return message
    return raw[:limit].decode("utf-8", "ignore") + f"… ({len(raw) - limit:,} more bytes)"


def line_matches(line: LogLine, task: str | None = None, level: int = 0) -> bool:
    """Whether ``line`` is of ``task`` (a task id, or a name or glob such as ``load_*``;
    ``None``: any) and of ``level`` or above (a number: ``logging.WARNING`` is 30)."""
    if level and level_number(line) < level:
        return False
    return task is None or line.task_id == task or fnmatch.fnmatchcase(line.task_name, task)


@dataclass(frozen=True, slots=True)
class HeardLine:
    """One line as a reader keeps it: ``index`` is its place among its run's lines heard
    (1, 2, ...: a view asks for the lines after the last it showed), ``line`` the line with
    its message cut to :data:`~cascade.interfaces.wire.MAX_LOG_LINE_BYTES` and its names to
    :data:`KEPT`."""

    index: int
    run_id: str
    source: str
    line: LogLine


@dataclass
class TaskLogCounts:
    """What is known of one task's lines: ``lines`` heard, ``dropped`` by its engine (its
    batches said so; by ``reasons``), ``missed`` otherwise (gaps in ``n`` beyond what the
    engine said it dropped: lost on the way, in batches this reader missed)."""

    task_id: str
    task_name: str
    lines: int = 0
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    last_n: int = 0
    gaps: int = 0  # lines the gaps in n left out, dropped or missed

    @property
    def missed(self) -> int:
        """Lines missing that the engine did not say it dropped."""
        return max(0, self.gaps - self.dropped)


@dataclass
class RunLogs:
    """One run's logs as heard: its last lines (``kept``, oldest first), how many were heard
    and how many the bounds let go, and its tasks' counts."""

    run_id: str
    org_id: str
    project_id: str
    source: str
    kept: deque[HeardLine] = field(default_factory=deque)
    heard: int = 0
    let_go: int = 0
    """Lines heard that the bounds (lines, bytes per run) no longer keep."""
    kept_bytes: int = 0
    tasks: dict[str, TaskLogCounts] = field(default_factory=dict)
    last_heard: float = 0.0

    def lines(self, after: int = 0, task: str | None = None, level: int = 0) -> list[HeardLine]:
        """The kept lines after ``index`` ``after`` of ``task`` and ``level`` or above
        (:func:`line_matches`), oldest first."""
        kept = self.kept
        if after and kept and kept[-1].index <= after:
            return []
        return [
            heard
            for heard in kept
            if heard.index > after and (line_matches(heard.line, task, level))
        ]

    @property
    def dropped(self) -> int:
        """Lines its engine said it dropped, every task's."""
        return sum(counts.dropped for counts in self.tasks.values())

    @property
    def missed(self) -> int:
        """Lines missing that its engine did not say it dropped, every task's."""
        return sum(counts.missed for counts in self.tasks.values())

    def counts(self, task_id: str, task_name: str) -> TaskLogCounts:
        """The counts of ``task_id`` (made when first heard of; beyond :data:`MAX_LOG_TASKS`
        tasks, those of ``"…"``, every other task's together)."""
        counts = self.tasks.get(task_id)
        if counts is None:
            if len(self.tasks) >= MAX_LOG_TASKS:
                task_id = task_name = _OTHERS
                counts = self.tasks.get(_OTHERS)
            if counts is None:
                counts = self.tasks[task_id] = TaskLogCounts(
                    task_id, truncate(task_name, KEPT["name"])
                )
        return counts


@dataclass(frozen=True)
class HeardBatch:
    """What one batch added: its new ``lines``, the lines its engine said it ``dropped``
    (:class:`~cascade.interfaces.logs.DroppedLines`), and the lines each task's gaps in ``n``
    show ``missing`` (``(task_id, task_name, lines)``: dropped or lost, said or not)."""

    run_id: str
    source: str
    lines: list[HeardLine]
    dropped: list[DroppedLines]
    missing: list[tuple[str, str, int]]


@dataclass
class LogFollower:
    """Folds log batches into each run's last lines and counts (:class:`RunLogs`).

    Feed it every message of :func:`~cascade.interfaces.logs.logs_filter` with :meth:`apply`
    (it is a subscription callback; it returns what the batch added, for a view that prints
    lines as they come). Memory is bounded: ``keep_lines`` lines and ``keep_bytes`` bytes
    of messages per run (the oldest go, counted in :attr:`RunLogs.let_go`), ``max_runs`` runs
    (the least recently heard go, counted in :attr:`forgotten_runs`).

    Refused, counted in :attr:`refusals` and changing nothing: a batch on a sourced topic
    whose payload claims another source (counted by the topic's), a batch about a run from
    another source than the run's (its :attr:`owner`'s, else the one first heard for it), a
    ``seq`` numbered like a batch seen with another content or too far from those seen, and
    a timestamp too far ahead (the batch's, or any of its lines'). Batches
    missed (gaps in ``seq``) are counted by :attr:`gaps`, per run and per source; a copy of
    a batch seen changes nothing.
    """

    prefix: str = DEFAULT_PREFIX
    keep_lines: int = DEFAULT_KEEP_LINES
    keep_bytes: int = DEFAULT_KEEP_BYTES
    max_runs: int = MAX_LOG_RUNS
    clock: Callable[[], float] = time.time
    runs: dict[str, RunLogs] = field(default_factory=dict)
    gaps: GapCounter = field(default_factory=GapCounter)
    """The batches missed (gaps in ``seq``), per run and per source."""
    refusals: Refusals = field(default_factory=Refusals)
    """Batches refused as no engine of their run can have sent them, by source and reason."""
    rejected: int = 0
    """Messages that are no log batch, ignored."""
    oversized: int = 0
    """Messages over the logs' bound (:func:`~cascade.interfaces.wire.payload_limit`), unread."""
    copies: int = 0
    """Batches heard again (a copy of one seen), ignored."""
    forgotten_runs: int = 0
    """Runs dropped beyond :attr:`max_runs`."""
    taken_over: int = 0
    """Runs heard anew from their owner (:attr:`owner`), the source first heard not theirs."""
    last_taken_from: str | None = None
    """The source the latest of those was first heard from (a view that showed its lines says
    they were not the run's engine's)."""
    owner: Callable[[str], str | None] | None = None
    """Whose a run is, as the reader of its telemetry takes it (``None`` for a run it does not
    know): :meth:`ReaderModel.run_owner <cascade.reader.ReaderModel.run_owner>`'s
    source. Where it names one, a batch of the run from any other source is refused
    (``foreign source``), and a run first heard here from another is heard anew from it (what
    the first said goes, counted refused as its): the logs believe who the views believe.
    Where it names none (or without it), the source first heard of the run."""

    def apply(self, message: Message) -> HeardBatch | None:
        """Fold one received message; what its batch added, ``None`` when it added nothing
        (refused, malformed, a copy, or not on a logs topic)."""
        kind = message.topic.removeprefix(self.prefix + "/").partition("/")[0]
        if kind != "logs":
            return None
        limit = payload_limit(kind)
        if limit is not None and len(message.raw) > limit:
            self.oversized += 1
            return None
        split = split_run_topic(message.topic, self.prefix)
        if split is None:
            self.rejected += 1
            return None
        try:
            batch = decode_log_batch(message.payload)
        except InvalidMessageError:
            self.rejected += 1
            return None
        if not same_place(message.topic, batch.org_id, batch.project_id, self.prefix):
            self.refusals.count(batch.source, REASON_NOT_ITS_PLACE)  # the topic's is bound
            return None
        return self._apply(batch, split[1], hash(message.raw))

    def _apply(self, batch: LogBatch, sourced: str | None, digest: int) -> HeardBatch | None:
        source = batch.source
        if sourced is not None and not same_source(source, sourced):
            self.refusals.count(
                decode_level(sourced), REASON_MISMATCH
            )  # the topic is what an ACL binds
            return None
        now = self.clock()
        stamp = parse_timestamp(batch.ts)
        if (stamp is not None and stamp - now > MAX_CLOCK_SKEW) or _lines_ahead(batch, now):
            self.refusals.count(source, REASON_FUTURE)
            return None
        run = self.runs.get(batch.run_id)
        owner = self.owner(batch.run_id) if self.owner is not None else None
        if owner is not None and source != owner:
            self.refusals.count(source, Seen.FOREIGN.value)
            return None
        if run is not None and source != run.source:
            if owner is None:
                self.refusals.count(source, Seen.FOREIGN.value)
                return None
            self.taken_over += 1
            self.last_taken_from = run.source
            self.refusals.count(run.source, Seen.FOREIGN.value)  # what it said goes
            self.forget_run(run.run_id)
            run = None
        seen = self.gaps.see(source, batch.run_id, batch.seq, digest)
        if seen is Seen.BEYOND and run is not None and self._displaced(run, batch.seq):
            run = None  # heard anew from this batch
            seen = self.gaps.see(source, batch.run_id, batch.seq, digest)
        if seen is Seen.COPY:
            self.copies += 1
            return None
        if seen is not Seen.NEW:
            self.refusals.count(source, seen.value)
            return None
        if run is None:
            if len(self.runs) >= self.max_runs:
                self._forget_least_heard()
            run = self.runs[batch.run_id] = RunLogs(
                batch.run_id, batch.org_id, batch.project_id, source
            )
        run.last_heard = now
        for dropped in batch.dropped:
            counts = run.counts(dropped.task_id, dropped.task_name)
            counts.dropped += dropped.lines
            counts.reasons[dropped.reason] = counts.reasons.get(dropped.reason, 0) + dropped.lines
        added: list[HeardLine] = []
        missing: dict[str, tuple[str, str, int]] = {}
        for line in batch.lines:
            counts = run.counts(line.task_id, line.task_name)
            if line.n:
                if line.n <= counts.last_n and counts.task_id != _OTHERS:
                    continue  # heard already (a batch numbered anew after a restart, say)
                gap = line.n - counts.last_n - 1 if counts.last_n else 0
                if gap > 0:
                    counts.gaps += gap
                    _, _, before = missing.get(line.task_id, ("", "", 0))
                    missing[line.task_id] = (line.task_id, counts.task_name, before + gap)
                counts.last_n = max(counts.last_n, line.n)
            counts.lines += 1
            run.heard += 1
            added.append(HeardLine(run.heard, run.run_id, source, _kept(line)))
        self._keep(run, added)
        return HeardBatch(run.run_id, source, added, list(batch.dropped), list(missing.values()))

    def _keep(self, run: RunLogs, added: Iterable[HeardLine]) -> None:
        kept = run.kept
        for heard in added:
            kept.append(heard)
            run.kept_bytes += len(heard.line.message)
        while kept and (len(kept) > self.keep_lines or run.kept_bytes > self.keep_bytes):
            run.kept_bytes -= len(kept.popleft().line.message)
            run.let_go += 1

    def _forget_least_heard(self) -> None:
        oldest = min(self.runs.values(), key=lambda run: run.last_heard)
        self.forget_run(oldest.run_id)
        self.forgotten_runs += 1

    def _displaced(self, run: RunLogs, seq: int) -> bool:
        """Whether ``run``'s batch numbers rest on one batch far above ``seq`` (a forger's,
        heard first: :meth:`~cascade.reader.GapCounter.lone`): then what it added goes
        (counted refused) and the run is heard anew."""
        lone = self.gaps.lone(run.run_id)
        if lone is None or seq >= lone:
            return False
        self.refusals.count(run.source, Seen.BEYOND.value)
        self.forget_run(run.run_id)
        return True

    def missed_batches(self, run_id: str) -> int:
        """The batches of ``run_id`` this reader missed (gaps in ``seq``)."""
        return self.gaps.missed_in(run_id)

    def forget_run(self, run_id: str) -> bool:
        """Drop what is kept of ``run_id`` (a view that stops following it); whether it was
        held."""
        self.gaps.forget(run_id)
        return self.runs.pop(run_id, None) is not None


def _lines_ahead(batch: LogBatch, now: float) -> bool:
    """Whether a line of ``batch`` is stamped beyond the skew ahead of ``now`` (the batch is
    refused whole, as one stamped so: a line dated 9999 would sort after every real one)."""
    for line in batch.lines:
        stamp = parse_timestamp(line.ts)
        if stamp is not None and stamp - now > MAX_CLOCK_SKEW:
            return True
    return False


def _kept(line: LogLine) -> LogLine:
    """``line`` with its message cut to what a reader keeps, and its names to :data:`KEPT`."""
    message = cut_message(line.message)
    name = truncate(line.task_name, KEPT["name"])
    logger = truncate(line.logger, KEPT["name"])
    if message is line.message and name is line.task_name and logger is line.logger:
        return line
    return structs.replace(line, message=message, task_name=name, logger=logger)
