"""What a reader refused, as the views show it: per source claimed, most first."""

from __future__ import annotations

from typing import Any

from ._model import ReaderModel

__all__ = ["refused_by_source"]


def refused_by_source(state: ReaderModel) -> list[dict[str, Any]]:
    """What ``state`` refused, per source claimed, most first: ``{"source", "messages",
    "reasons": {reason: count}}`` (messages no engine of their run can have sent)."""
    refusals = state.refusals
    return [
        {"source": source, "messages": refusals.of(source), "reasons": dict(reasons)}
        for source, reasons in sorted(
            refusals.by_source.items(), key=lambda item: (-sum(item[1].values()), item[0])
        )
    ]
