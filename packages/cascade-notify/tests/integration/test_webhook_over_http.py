"""`Webhook` against a real HTTP receiver: a huge answer is read no further than a bound."""

from __future__ import annotations

import time

import pytest

from cascade.notify import Webhook
from cascade.testkit import WebhookReceiver

HUGE = 256 * 1024 * 1024


@pytest.mark.asyncio
async def test_a_huge_answer_is_read_only_to_a_bound(receiver: WebhookReceiver) -> None:
    """A 200 with a 256 MiB body is taken after at most 64 KiB of it, the connection closed:
    what the receiver got through is what the poster's socket buffers hold, not the body."""
    receiver.answer_size = HUGE
    hook = Webhook(receiver.url, timeout=10.0, attempts=1)
    started = time.monotonic()
    try:
        posted = await hook.post({"text": "x"})
    finally:
        await hook.close()
    assert posted.ok
    assert posted.status == 200
    assert time.monotonic() - started < hook.timeout
    assert receiver.wait_answered()
    assert receiver.answered < 16 * 1024 * 1024
