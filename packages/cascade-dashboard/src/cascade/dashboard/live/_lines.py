"""Lines of work, live: a run, its reruns and its carry-ons folded into one row of the runs'
list as they happen, as the history's list folds the runs it recorded.

A run's line is named by its first run: the ``root_run`` its ``ENGINE_STARTED`` (or its
engine's answer) says in its origin, which a rerun and a carry-on both name; a run naming
none is the first of its own line. This is the history's rule (``root_run`` or ``run_id``),
so that a line of work is one row however it is read: its latest run's row, with ``line``:
the line's runs, oldest first, each with its status, its name and the results it reused, in
the shape of the history's ``RunLink`` (``run_id``, ``status``, ``name``, ``reused``), and
the page's ``lineOfWork`` draws both alike.

Anyone who can publish may claim any ``root_run``. A line never crosses an org or project:
its key names both, so a run claiming a run of another project as its first starts a line of
its own in its own project, and never joins (nor hides) the other's. A line never loops: a
run's line is read from its own origin only, never by following one run's claim to the next
(a cycle of claims is two lines, as in the history). What a row says of its line is bounded
(:data:`MAX_LINE_SHOWN`: the first run and the latest ones, ``line_more`` counting those
between); what is kept is one list of the runs the model already holds.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cascade.reader import RunView

from ._fleet_index import FleetRun

__all__ = ["MAX_LINE_SHOWN", "Line", "LineKey", "LinesOfWork", "line_key", "run_link"]

MAX_LINE_SHOWN = 20
"""The runs of a line a row lists at most: its first run and the latest others."""

LineKey = tuple[str, str, str]
"""A line of work: its org, its project and its first run's id."""
RunKey = tuple[int, float, str]  # a run's place in the runs' list (_listing)


def line_key(run: RunView | FleetRun) -> LineKey:
    """The line of work ``run`` is of: its org's, its project's, of the first run its origin
    names (its own id when it names none; a summary's run names none)."""
    origin = run.origin if isinstance(run, RunView) else None
    root = origin.root_run if origin is not None else None
    return (run.org_id, run.project_id, root or run.run_id)


def run_link(run: RunView) -> dict[str, Any]:
    """One run of a line as a row lists it: the history's ``RunLink`` shape (its id, status,
    name and how many of its tasks reused a result an earlier run kept)."""
    return {
        "run_id": run.run_id,
        "status": run.status,
        "name": run.name,
        "reused": run.reuses().get("reused", 0),
    }


@dataclass(slots=True)
class Line:
    """One line of work: its runs, oldest first (by when the dashboard first heard of each),
    and the model's version when a run last joined or left it."""

    runs: list[RunView]
    changed: int

    @property
    def latest(self) -> RunView:
        """The run whose row stands for the line."""
        return self.runs[-1]

    def part(self) -> dict[str, Any]:
        """What a row adds of its line: ``line``, its runs oldest first (nothing for a run
        that is the only one of its line: a first answer of many runs stays small), at most
        :data:`MAX_LINE_SHOWN`
        (the first and the latest), and ``line_more``: how many were left out between."""
        runs = self.runs
        if len(runs) < 2:
            return {}
        shown = runs if len(runs) <= MAX_LINE_SHOWN else [runs[0], *runs[1 - MAX_LINE_SHOWN :]]
        return {"line": [run_link(run) for run in shown], "line_more": len(runs) - len(shown)}


class LinesOfWork:
    """The live runs' lines of work of two runs or more, as the runs' list last sorted the
    runs: rebuilt with each sort (a run came or went, changed status, or named its first run),
    read by every page and request meanwhile. A run of no such line is its own row, at no
    cost but one look at its origin per sort."""

    def __init__(self) -> None:
        self.lines: dict[LineKey, Line] = {}
        self.folded: frozenset[str] = frozenset()
        """The ids of the runs a later run of their line stands for (every run of a line but
        its latest): the rows left out of an unfiltered page."""
        self._rows: dict[str, tuple[int, bytes]] = {}

    def rebuild(self, keys: Sequence[RunKey], runs: Sequence[RunView], version: int) -> None:
        """The lines of ``runs`` (with their places in the list, ``keys``), the model at
        ``version``."""
        grouped: dict[LineKey, list[tuple[float, str, RunView]]] = {}
        for key, run in zip(keys, runs, strict=True):  # the reruns: those naming a first run
            origin = run.origin
            root = origin.root_run if origin is not None else None
            if root:
                named = (run.org_id, run.project_id, root)
                grouped.setdefault(named, []).append((-key[1], key[2], run))
        if grouped:  # their first runs, where held: those that name none and are named
            roots = {named[2] for named in grouped}
            for key, run in zip(keys, runs, strict=True):
                if run.run_id in roots and (run.origin is None or not run.origin.root_run):
                    members = grouped.get((run.org_id, run.project_id, run.run_id))
                    if members is not None:
                        members.append((-key[1], key[2], run))
        lines: dict[LineKey, Line] = {}
        for named, members in grouped.items():
            if len(members) < 2:
                continue
            members.sort(key=_heard)
            ordered = [run for _, _, run in members]
            old = self.lines.get(named)
            changed = old.changed if old is not None and _same_runs(old.runs, ordered) else version
            lines[named] = Line(ordered, changed)
        self.lines = lines
        self.folded = frozenset(run.run_id for line in lines.values() for run in line.runs[:-1])
        latest = {line.latest.run_id for line in lines.values()}
        self._rows = {run_id: row for run_id, row in self._rows.items() if run_id in latest}

    def line(self, run: RunView | FleetRun) -> Line | None:
        """``run``'s line, when it is of one of two runs or more (``None``: it is not, it is a
        summary's run, or the lists have not sorted since it came or named its first run)."""
        if not isinstance(run, RunView) or not self.lines:
            return None
        line = self.lines.get(line_key(run))
        return line if line is not None and any(member is run for member in line.runs) else None

    def part(self, run: RunView | FleetRun) -> dict[str, Any]:
        """What ``run``'s row adds of its line (:meth:`Line.part`; a run of no line: none)."""
        line = self.line(run)
        return line.part() if line is not None else {}

    def folded_among(self, keep: Callable[[Any], bool]) -> set[str]:
        """The ids of the runs ``keep`` keeps that a later run it keeps of their line stands
        for: a filtered page folds what it matches, as the history's list folds a page."""
        folded: set[str] = set()
        for line in self.lines.values():
            kept = [run.run_id for run in line.runs if keep(run)]
            folded.update(kept[:-1])
        return folded

    def row_version(self, run: RunView | FleetRun, version_of: Callable[[Any], int]) -> int:
        """The version ``run``'s row last changed at: of its own summary (``version_of``), of
        every run of its line, and of its line's runs joining or leaving it."""
        line = self.line(run)
        if line is None:
            return version_of(run)
        return max(line.changed, *(version_of(member) for member in line.runs))

    def row_json(
        self, run: RunView | FleetRun, version: int, summary: Callable[[Any], bytes]
    ) -> bytes:
        """``run``'s row as JSON: its ``summary`` and its line's :meth:`Line.part` (a line's
        latest run's built once per ``version`` of it)."""
        line = self.line(run)
        if line is None:
            return summary(run)
        kept = self._rows.get(run.run_id)
        if kept is not None and kept[0] == version:
            return kept[1]
        row = summary(run)[:-1] + b", " + json.dumps(line.part()).encode()[1:]
        if line.latest is run:
            self._rows[run.run_id] = (version, row)
        return row


def _same_runs(before: list[RunView], now: list[RunView]) -> bool:
    """Whether a line holds the very same runs as before, in the same order."""
    return len(before) == len(now) and all(map(operator.is_, before, now))


_heard = operator.itemgetter(0, 1)  # a line's runs in the order they were first heard of
