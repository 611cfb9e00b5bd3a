"""The per-source lists of what went wrong, bounded by what a page shows.

What a reader missed (by source), refused (by the source claimed), the engines whose id two
live engines share and those whose telemetry does not arrive (silent): in a fleet each of these
can name every engine (a reader in fleet mode skips events by design), so ``/api/state`` and the
streams carry only the worst few of each and their totals (:func:`problems_header`; the silent
ones, the model's header), and ``/api/problems/{kind}`` pages through the rest
(:func:`problems_page`), by source, so that paging neither skips nor repeats a source however
the counts change meanwhile.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cascade.reader import ReaderModel, silence_line

__all__ = ["KINDS", "LISTS", "PROBLEMS_SHOWN", "ProblemsPage", "problems_header", "problems_page"]

PROBLEMS_SHOWN = 10
"""The sources each list in ``/api/state`` names at most (the worst first)."""
PROBLEMS_PATH = "/api/problems/"

Item = dict[str, Any]


def _missed(state: ReaderModel) -> Iterable[tuple[str, int]]:
    return ((source, gaps.missed) for source, gaps in state.gaps.by_source.items() if gaps.missed)


def _missed_item(state: ReaderModel, source: str) -> Item:
    gaps = state.gaps.by_source[source]
    return {"source": source, "events": gaps.missed, "since": gaps.since}


def _refused(state: ReaderModel) -> Iterable[tuple[str, int]]:
    return ((source, sum(reasons.values())) for source, reasons in state.refusals.by_source.items())


def _refused_item(state: ReaderModel, source: str) -> Item:
    reasons = state.refusals.by_source[source]
    return {"source": source, "messages": sum(reasons.values()), "reasons": dict(reasons)}


def _conflicts(state: ReaderModel) -> Iterable[tuple[str, int]]:
    return (
        (source, 1)
        for source, engine in state.engines.items()
        if engine.conflict_session is not None
    )


def _conflict_item(state: ReaderModel, source: str) -> Item:
    engine = state.engines[source]
    session = engine.status.session if engine.status is not None else None
    return {"source": source, "session": session, "conflict_session": engine.conflict_session}


def _silent(state: ReaderModel) -> Iterable[tuple[str, int]]:
    return ((engine.source, 1) for engine in state.silent_engines())


def _silent_item(state: ReaderModel, source: str) -> Item:
    return {"source": source, "line": silence_line(state.engines[source])}


_Weigh = Callable[[ReaderModel], Iterable[tuple[str, int]]]
_Describe = Callable[[ReaderModel, str], Item]
KINDS: dict[str, tuple[_Weigh, _Describe, str]] = {
    "missed": (_missed, _missed_item, "events"),
    "refused": (_refused, _refused_item, "messages"),
    "conflicts": (_conflicts, _conflict_item, "engines"),
}
"""Each list a header weighs: its sources with their weight, one source's item, and what the
weight counts. Only the sources shown get an item built: at 10,000 sources, building them all
took 25 ms at each look."""

LISTS: dict[str, tuple[_Weigh, _Describe, str]] = {
    **KINDS,
    "silent": (_silent, _silent_item, "engines"),
}
"""Every list ``/api/problems/{kind}`` pages through: :data:`KINDS` and the silent engines
(which the model's header names, the first few by source)."""


def problems_header(state: ReaderModel, shown: int = PROBLEMS_SHOWN) -> dict[str, Any]:
    """``missed``, ``refused`` and ``conflicts``: the worst ``shown`` of each (the most events
    missed, messages refused; conflicts by source), and ``<kind>_total``: how many sources
    each names, what they add up to, and where the rest is (``rest``, ``None``: all shown)."""
    out: dict[str, Any] = {}
    for kind, (weigh, describe, weight) in KINDS.items():
        weighed = list(weigh(state))
        if kind == "conflicts":
            worst = heapq.nsmallest(shown, weighed)
        else:
            worst = heapq.nsmallest(shown, weighed, key=lambda e: (-e[1], e[0]))
        out[kind] = [describe(state, source) for source, _ in worst]
        out[kind + "_total"] = {
            "sources": len(weighed),
            weight: sum(count for _, count in weighed),
            "rest": PROBLEMS_PATH + kind if len(weighed) > len(worst) else None,
        }
    return out


@dataclass(frozen=True)
class ProblemsPage:
    """One page of a list, by source: its ``items``, how many sources it names in all, and
    the source to page on from (``next_after``, ``None``: this is the last page)."""

    items: list[Item]
    total: int
    next_after: str | None

    def as_dict(self, kind: str) -> dict[str, Any]:
        """The page as ``/api/problems/{kind}`` answers it."""
        return {
            "kind": kind,
            "items": self.items,
            "total": self.total,
            "next_after": self.next_after,
        }


def problems_page(state: ReaderModel, kind: str, limit: int, after: str | None) -> ProblemsPage:
    """The ``limit`` sources of the list ``kind`` (one of :data:`LISTS`) after the source
    ``after`` (``None``: from the first), by source; ``ValueError`` for an unknown kind."""
    if kind not in LISTS:
        raise ValueError(f"no such list: {kind!r} (one of {', '.join(LISTS)})")
    weigh, describe, _ = LISTS[kind]
    sources = sorted(source for source, _ in weigh(state))
    start = bisect_right(sources, after) if after is not None else 0
    page = sources[start : start + limit]
    more = start + limit < len(sources)
    items = [describe(state, source) for source in page]
    return ProblemsPage(items, len(sources), page[-1] if more else None)
