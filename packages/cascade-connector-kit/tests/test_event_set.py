"""event_set: an event awaited for at most so long, without losing a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from cascade.connector_kit import event_set


async def test_says_whether_the_event_was_set_in_time() -> None:
    event = asyncio.Event()
    assert await event_set(event, 0.01) is False
    event.set()
    assert await event_set(event, 0.01) is True
    assert await event_set(event, None) is True


async def test_the_wait_ends_when_the_event_is_set() -> None:
    event = asyncio.Event()
    waiting = asyncio.ensure_future(event_set(event, 60))
    await asyncio.sleep(0)
    event.set()
    assert await waiting is True


async def test_a_cancel_that_arrives_as_the_event_is_set_is_not_lost() -> None:
    """The window asyncio.wait_for (before 3.12) drops a cancel in: the event's waiter has
    ended and woken the caller, who is cancelled before it runs again (a Ctrl-C then)."""
    event = asyncio.Event()
    waiting = asyncio.ensure_future(event_set(event, 60))
    await asyncio.sleep(0)  # it waits
    event.set()
    await asyncio.sleep(0)  # the event's waiter ends and wakes the caller...
    waiting.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_cancelled_wait_leaves_no_task_behind() -> None:
    event = asyncio.Event()
    before = asyncio.all_tasks()
    waiting = asyncio.ensure_future(event_set(event, 60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)  # the waiter's own cancellation runs
    assert asyncio.all_tasks() == before
