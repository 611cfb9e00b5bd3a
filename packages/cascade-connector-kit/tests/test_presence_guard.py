"""PresenceGuard: a connector's own old wills versus another connector using its source id."""

from __future__ import annotations

from typing import Literal

from cascade.connector_kit import PresenceGuard, PresenceVerdict
from cascade.interfaces import StatusMessage, decode_status


def status(
    kind: Literal["online", "offline"], session: int | None, conflict: int | None = None
) -> StatusMessage:
    return StatusMessage(status=kind, source="s", session=session, conflict_session=conflict)


def guard_at(*sessions: int) -> PresenceGuard:
    """A guard whose connector announced ``sessions`` in turn, the last one's echo seen."""
    guard = PresenceGuard()
    for session in sessions:
        guard.started(session)
    assert guard.judge(status("online", sessions[-1])) == PresenceVerdict("own")
    return guard


def test_its_own_online_needs_nothing() -> None:
    """The echo of its own birth (or re-announcement)."""
    assert guard_at(100).judge(status("online", 100)) == PresenceVerdict("own")


def test_nothing_is_judged_before_a_session_started() -> None:
    """Not online yet: nothing to answer for."""
    assert PresenceGuard().judge(status("offline", 5)) == PresenceVerdict("own")


def test_its_own_earlier_will_is_stale_and_answered() -> None:
    """A will of this connector's previous connection, sent late by the broker."""
    verdict = guard_at(100, 200).judge(status("offline", 100))
    assert verdict == PresenceVerdict("stale", reannounce=True)


def test_an_older_offline_of_a_session_never_seen_live_is_a_predecessors_will() -> None:
    """A restarted engine with a fixed source id gets its dead predecessor's will: no conflict."""
    verdict = guard_at(200).judge(status("offline", 150))
    assert verdict == PresenceVerdict("stale", reannounce=True)


def test_a_stale_will_before_its_own_births_echo_needs_no_answer() -> None:
    """Given at SUBSCRIBE (before the birth) or taken by the broker before it: the birth
    replaced it. A peer's online then is still learnt and answered."""
    guard = PresenceGuard()
    guard.started(200)
    assert guard.judge(status("offline", 150)) == PresenceVerdict("stale", reannounce=False)
    assert guard.judge(status("offline", None)) == PresenceVerdict("stale", reannounce=False)
    peer = guard.judge(status("online", 180))
    assert peer == PresenceVerdict("conflict", reannounce=True, conflict_session=180)
    assert guard.judge(status("offline", 180)).reannounce  # the peer ended: answered
    assert guard.judge(status("online", 200)) == PresenceVerdict("own")  # the echo
    assert guard.judge(status("offline", 150)) == PresenceVerdict("stale", reannounce=True)
    guard.started(300)  # a new connection: its own echo awaited again
    assert guard.judge(status("offline", 200)) == PresenceVerdict("stale", reannounce=False)


def test_an_offline_without_session_is_answered_as_stale() -> None:
    """An older tool's will: it cannot be told apart, so it is only answered."""
    assert guard_at(200).judge(status("offline", None)).kind == "stale"


def test_another_online_is_a_conflict_answered_once() -> None:
    """A second live connector: re-announce once, naming it; not again for the same session."""
    guard = guard_at(100)
    first = guard.judge(status("online", 200))
    assert first == PresenceVerdict("conflict", reannounce=True, conflict_session=200)
    again = guard.judge(status("online", 200))
    assert again == PresenceVerdict("conflict", reannounce=False, conflict_session=200)


def test_an_online_that_already_names_us_is_not_answered() -> None:
    """The other connector's answer: both know, so the exchange ends here."""
    verdict = guard_at(200).judge(status("online", 100, conflict=200))
    assert verdict == PresenceVerdict("conflict", reannounce=False, conflict_session=100)


def test_two_guards_exchange_finitely() -> None:
    """Two connectors answering each other's onlines stop after one round."""
    a, b = guard_at(100), guard_at(200)
    pending = [("a", status("online", 200))]  # b's birth, seen by a
    sent = 0
    while pending:
        receiver, message = pending.pop()
        guard, own = (a, 100) if receiver == "a" else (b, 200)
        verdict = guard.judge(message)
        if verdict.reannounce:
            sent += 1
            reply = status("online", own, verdict.conflict_session)
            pending.append(("b" if receiver == "a" else "a", reply))
        assert sent < 10
    assert sent == 1


def test_the_offline_of_a_connector_seen_live_is_a_conflict() -> None:
    """The other engine ended: its offline hides this live one, so answer it, and again when
    its will follows its graceful offline (it hides this one again; the ended engine answers
    nothing, so the two never answer each other)."""
    guard = guard_at(200)
    guard.judge(status("online", 100))
    verdict = guard.judge(status("offline", 100))
    assert verdict == PresenceVerdict("conflict", reannounce=True, conflict_session=100)
    assert guard.judge(status("offline", 100)) == verdict


def test_the_offline_of_a_newer_session_is_a_conflict() -> None:
    """A newer session than ours went offline: it was live after us, under our id."""
    verdict = guard_at(100).judge(status("offline", 300))
    assert verdict == PresenceVerdict("conflict", reannounce=True, conflict_session=300)


def test_the_rule_is_statusmessage_supersedes() -> None:
    """Older offline vs. newer offline: exactly where supersedes() draws the line."""
    mine = status("online", 200)
    for other in (199, 200, 201):
        seen = status("offline", other)
        kind = guard_at(200).judge(seen).kind
        if other == 200:
            assert kind == "own"  # our own offline (shutting down, or the link is gone): no answer
            continue
        assert (kind == "conflict") == seen.supersedes(mine)


def test_conflict_session_round_trips_and_is_optional() -> None:
    """The additive field decodes when present and is left out when not."""
    raw = b'{"status":"online","source":"s","session":5,"conflict_session":7}'
    assert decode_status(raw).conflict_session == 7
    assert decode_status(b'{"status":"online"}').conflict_session is None
    assert b"conflict_session" not in __import__("msgspec").json.encode(status("online", 1))
