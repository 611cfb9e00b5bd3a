"""`cascade notify`'s claims and audit in the history: one claim wins an event, a lease that
ends unposted is taken over once, a claim taken over is no longer its first owner's to mark
posted, and the posts are listed by the audit."""

from __future__ import annotations

import threading

from cascade.history import History, NotifyPost


def test_the_first_claim_wins_and_the_others_find_who_holds_it(history: History) -> None:
    """One insert wins; the others lose, seeing the holder, until it is posted."""
    won = history.claim_post("g", "run.failed:r1", "a", lease=60, now=100.0)
    assert won.won
    assert not won.taken_over
    lost = history.claim_post("g", "run.failed:r1", "b", lease=60, now=101.0)
    assert (lost.won, lost.owner, lost.claimed_at, lost.posted_at) == (False, "a", 100.0, None)
    assert history.end_post("g", "run.failed:r1", "a", outcome="posted", now=102.0)
    later = history.claim_post("g", "run.failed:r1", "b", lease=60, now=500.0)
    assert (later.won, later.posted_at, later.outcome) == (False, 102.0, "posted")


def test_groups_claim_apart(history: History) -> None:
    """Notifiers of another group (another webhook) claim the same event for themselves."""
    assert history.claim_post("slack", "k", "a", lease=60).won
    assert history.claim_post("pager", "k", "b", lease=60).won


def test_a_claim_not_posted_within_its_lease_is_taken_over_once(history: History) -> None:
    """After the lease, one notifier takes the claim over; its first owner can no longer mark
    it posted (a post that outlasted its lease), the new owner can."""
    assert history.claim_post("g", "k", "dead", lease=10, now=100.0).won
    assert not history.claim_post("g", "k", "b", lease=10, now=109.0).won
    taken = history.claim_post("g", "k", "b", lease=10, now=111.0)
    assert taken.won
    assert taken.taken_over
    assert not history.claim_post("g", "k", "c", lease=10, now=112.0).won
    assert not history.end_post("g", "k", "dead", outcome="posted", now=113.0)
    assert history.end_post("g", "k", "b", outcome="posted", now=113.0)


def test_of_many_claiming_at_once_one_wins(history: History) -> None:
    """Eight threads (each a connection) claim one event and take one expired claim over:
    one wins each."""
    assert history.claim_post("g", "old", "dead", lease=5, now=0.0).won
    wins: list[tuple[str, str]] = []
    start = threading.Barrier(8)

    def claim(owner: str) -> None:
        start.wait()
        for key in ("new", "old"):
            if history.claim_post("g", key, owner, lease=5, now=100.0).won:
                wins.append((key, owner))

    threads = [threading.Thread(target=claim, args=(f"n{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(key for key, _ in wins) == ["new", "old"]


def test_old_claims_are_pruned(history: History) -> None:
    """Claims made before the cut are forgotten (and could be claimed again)."""
    history.claim_post("g", "a", "x", lease=60, now=100.0)
    history.claim_post("g", "b", "x", lease=60, now=300.0)
    assert history.prune_post_claims(200.0) == 1
    assert history.claim_post("g", "a", "y", lease=60, now=400.0).won


def test_posts_are_in_the_audit(history: History) -> None:
    """Each post, and each failure, is a ``notified`` audit event with where (redacted), what
    and how it ended."""
    history.record_post(NotifyPost(
        at=1000.0, event="run.failed", event_key="run.failed:r1", webhook="https://hooks.x/…",
        outcome="posted", attempts=2, notifier="host-1-ab", group="g", run_id="r1",
        task_id="load-1", source="eng", status=200,
    ))  # fmt: skip
    history.record_post(NotifyPost(
        at=1001.0, event="engine.lost", event_key="engine.lost:eng:1", webhook="https://hooks.x/…",
        outcome="failed", attempts=5, notifier="host-1-ab", group="g", source="eng",
        status=500, error="answered 500 Internal Server Error",
    ))  # fmt: skip
    lost, posted = (e for e in history.audit() if e.action == "notified")
    assert (lost.type, lost.scope, lost.issued_by) == ("engine.lost", "engine:eng", "host-1-ab")
    assert lost.notified is not None
    assert lost.notified["outcome"] == "failed"
    assert lost.notified["error"] == "answered 500 Internal Server Error"
    assert (posted.type, posted.scope, posted.run_id) == ("run.failed", "run:r1", "r1")
    assert posted.to_json()["notified"]["webhook"] == "https://hooks.x/…"
    assert [e.action for e in history.audit(since=1000.5)] == ["notified"]
