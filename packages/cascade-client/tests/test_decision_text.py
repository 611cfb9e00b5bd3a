"""How a decision taken is said: who, when and why, made inert."""

from __future__ import annotations

from cascade.control._decision_text import describe_decided
from cascade.interfaces.commands import Decided


def test_a_decision_taken_is_said_with_who_when_and_why() -> None:
    now = 1_000_000.0
    said = Decided(decision="retry", attempt=1, by="alice", reason="API back", at=now - 12)
    assert describe_decided(said, now) == "retry by alice 12 s ago (API back)"
    deadline = Decided(decision="fail", attempt=1, at=now - 180, deadline=True)
    assert describe_decided(deadline, now) == "fail at the hold's deadline 3 min ago"
    forged = Decided(decision="skip", attempt=1, by="eve\x1b[2J")
    assert describe_decided(forged, now) == "skip by eve\\x1b[2J"
