"""Claims in a real PostgreSQL that stops and comes back: while it is down, an event is posted
unclaimed after the ledger's patience, counted; once it is back, events are claimed again."""

from __future__ import annotations

import asyncio
import time

import pytest

from cascade.history import History
from cascade.notify import ClaimLedger
from cascade.testkit import PrivatePostgreSQL


@pytest.mark.asyncio
async def test_a_database_down_lets_a_notifier_post_unclaimed_and_counts_it(
    postgresql: PrivatePostgreSQL, postgresql_url: str
) -> None:
    """Down: the claim is retried for ``patience`` seconds, then the event is this notifier's
    to post (``unclaimed``), and marking a claim posted fails, counted; back up: claimed."""
    stopping = asyncio.Event()
    with History(postgresql_url, mode="write") as state:
        ledger = ClaimLedger(state, group="g", lease=60.0, patience=1.0)
        assert await ledger.claim("run.failed:before", stopping) is None
        postgresql.stop_server()
        try:
            started = time.monotonic()
            assert await ledger.claim("run.failed:during", stopping) is None
            assert time.monotonic() - started >= 1.0
            assert ledger.unclaimed == 1
            assert ledger.errors["claim"] >= 2
            await ledger.settle("run.failed:during", "posted")  # nothing claimed: nothing to mark
            await ledger.settle("run.failed:before", "posted")
            assert ledger.errors["settle"] == 1
            assert ledger.overruns == 0
        finally:
            postgresql.start_server()
        assert await ledger.claim("run.failed:after", stopping) is None
        assert ledger.unclaimed == 1
        other = ClaimLedger(state, group="g", lease=60.0)
        await ledger.settle("run.failed:after", "posted")
        assert await other.claim("run.failed:after", stopping) == "by_another"
        stopping.set()  # what a notifier that stops does with a claim another holds: leaves it
        assert await other.claim("run.failed:before", stopping) == "by_another"
