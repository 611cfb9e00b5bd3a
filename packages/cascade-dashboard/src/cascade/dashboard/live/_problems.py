"""The per-source lists of what went wrong, bounded by what a page shows.

What a reader missed (by source), refused (by the source claimed) and the engines whose id two
live engines share: in a fleet each of these can name every engine (a reader in fleet mode
skips events by design), so ``/api/state`` and the streams carry only the worst few of each
and their totals (:func:`problems_header`), and ``/api/problems/{kind}`` pages through the rest
(:func:`problems_page`), by source, so that paging neither skips nor repeats a source however
the counts change meanwhile.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cascade.interfaces.reader import ReaderModel

__all__ = ["KINDS", "PROBLEMS_SHOWN", "ProblemsPage", "problems_header", "problems_page"]

PROBLEMS_SHOWN = 10
"""The sources each list in ``/api/state`` names at most (the worst first)."""
PROBLEMS_PATH = "/api/problems/"

Item = dict[str, Any]


def _missed(state: ReaderModel) -> Iterable[tuple[str, int, Item]]:
    for source, gaps in state.gaps.by_source.items():
        if gaps.missed:
            yield source, gaps.missed, {"source": source, "events": gaps.missed,
                                        "since": gaps.since}  # fmt: skip


def _refused(state: ReaderModel) -> Iterable[tuple[str, int, Item]]:
    for source, reasons in state.refusals.by_source.items():
        messages = sum(reasons.values())
        yield source, messages, {"source": source, "messages": messages, "reasons": dict(reasons)}


def _conflicts(state: ReaderModel) -> Iterable[tuple[str, int, Item]]:
    for source, engine in state.engines.items():
        if engine.conflict_session is not None:
            session = engine.status.session if engine.status is not None else None
            item = {"source": source, "session": session,
                    "conflict_session": engine.conflict_session}  # fmt: skip
            yield source, 1, item


_Lister = Callable[[ReaderModel], Iterable[tuple[str, int, Item]]]
KINDS: dict[str, tuple[_Lister, str]] = {
    "missed": (_missed, "events"),
    "refused": (_refused, "messages"),
    "conflicts": (_conflicts, "engines"),
}
"""Each list: how it is read from the model, and what its items' weight counts."""


def problems_header(state: ReaderModel, shown: int = PROBLEMS_SHOWN) -> dict[str, Any]:
    """``missed``, ``refused`` and ``conflicts``: the worst ``shown`` of each (the most events
    missed, messages refused; conflicts by source), and ``<kind>_total``: how many sources
    each names, what they add up to, and where the rest is (``rest``, ``None``: all shown)."""
    out: dict[str, Any] = {}
    for kind, (lister, weight) in KINDS.items():
        sources = total = 0
        entries = []
        for source, count, item in lister(state):
            sources += 1
            total += count
            entries.append((count, source, item))
        if kind == "conflicts":
            worst = heapq.nsmallest(shown, entries, key=lambda e: e[1])
        else:
            worst = heapq.nsmallest(shown, entries, key=lambda e: (-e[0], e[1]))
        out[kind] = [item for _, _, item in worst]
        out[kind + "_total"] = {
            "sources": sources,
            weight: total,
            "rest": PROBLEMS_PATH + kind if sources > len(worst) else None,
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
        return {"kind": kind, "items": self.items, "total": self.total,
                "next_after": self.next_after}  # fmt: skip


def problems_page(state: ReaderModel, kind: str, limit: int, after: str | None) -> ProblemsPage:
    """The ``limit`` sources of the list ``kind`` (one of :data:`KINDS`) after the source
    ``after`` (``None``: from the first), by source; ``ValueError`` for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"no such list: {kind!r} (one of {', '.join(KINDS)})")
    entries = sorted(((source, item) for source, _, item in KINDS[kind][0](state)),
                     key=lambda e: e[0])  # fmt: skip
    start = bisect_right([source for source, _ in entries], after) if after is not None else 0
    page = entries[start : start + limit]
    more = start + limit < len(entries)
    return ProblemsPage([item for _, item in page], len(entries), page[-1][0] if more else None)
