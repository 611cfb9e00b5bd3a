"""Engines' summaries: what an engine says of its live runs, every few seconds, for a fleet's
readers that do not read every event (docs/protocol.md, "Summaries").
"""

from ._summary import (
    EngineSummary,
    RunTally,
    SummaryRun,
    TaskTally,
    decode_summary,
    misplaced_runs,
    placed_summary_filter,
    summary_filter,
    summary_messages,
    summary_topic,
)

__all__ = [
    "EngineSummary",
    "RunTally",
    "SummaryRun",
    "TaskTally",
    "decode_summary",
    "misplaced_runs",
    "placed_summary_filter",
    "summary_filter",
    "summary_messages",
    "summary_topic",
]
