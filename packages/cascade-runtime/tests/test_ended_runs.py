"""An engine's recently ended runs: the command subscriptions it keeps for their late decisions
are closed by a timer once their window passes (an engine that idles after a run keeps none),
and at once when more runs than it keeps have ended."""

from __future__ import annotations

import asyncio

from cascade.runtime._ended_runs import EndedDecisions, EndedRuns


def _decisions(run_id: str) -> EndedDecisions:
    return EndedDecisions(
        run_id,
        "e-1",
        decided={},
        last={},
        names={},
        replies={},
        max_replies=16,
        stats=None,
    )


class _Subscription:
    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.timeouts: list[float] = []

    async def close(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self.closed.set()


async def test_a_kept_subscription_is_closed_when_its_window_passes_with_no_run_after() -> None:
    ended = EndedRuns(window=0.05)
    subscription = _Subscription()
    ended.ended(_decisions("r1"))
    await ended.listen("r1", subscription.close, 2.0)
    assert ended.listening == 1
    await asyncio.wait_for(subscription.closed.wait(), 5)  # the loop's timer, no later run
    assert subscription.timeouts == [2.0]
    assert ended.listening == 0
    assert ended.get("r1") is None  # what answered it is gone too


async def test_no_more_subscriptions_are_kept_than_runs() -> None:
    ended = EndedRuns(window=60.0, max_runs=2)
    subscriptions = [_Subscription() for _ in range(3)]
    for n, subscription in enumerate(subscriptions):
        ended.ended(_decisions(f"r{n}"))
        await ended.listen(f"r{n}", subscription.close, 1.0)
    assert [s.closed.is_set() for s in subscriptions] == [True, False, False]
    assert ended.listening == 2
    assert ended.get("r0") is None
    assert ended.get("r2") is not None


async def test_close_all_closes_every_kept_subscription_now() -> None:
    ended = EndedRuns(window=60.0)
    kept = _Subscription()
    ended.ended(_decisions("r1"))
    await ended.listen("r1", kept.close, 1.0)
    await ended.close_all()
    assert kept.timeouts == [1.0]
    assert ended.listening == 0


async def test_close_all_waits_for_the_closes_the_timer_began() -> None:
    """A serving engine about to close its connection: no close left running after it."""
    ended = EndedRuns(window=0.01)
    began, release = asyncio.Event(), asyncio.Event()
    finished: list[float] = []

    async def slow_close(timeout: float) -> None:
        began.set()
        await release.wait()
        finished.append(timeout)

    ended.ended(_decisions("r1"))
    await ended.listen("r1", slow_close, 1.0)
    await asyncio.wait_for(began.wait(), 5)  # the timer's close is under way
    release.set()
    await ended.close_all()
    assert finished == [1.0]
