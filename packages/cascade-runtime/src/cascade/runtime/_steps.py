"""Connector steps of a run (connect, subscribe, unsubscribe, disconnect), bounded and named."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from cascade.connector_kit import bounded
from cascade.interfaces import CascadeError

from ._errors import TaskFailedError

__all__ = ["StepFailed", "describe", "explain", "within"]


def describe(exc: BaseException) -> str:
    """``ExcType: message``, as docs/protocol.md's ``error`` field has it (a run's failed task
    without the run's id: the field is on the run's own topic). A private exception class of
    Cascade's own (a start refused, ``_Refused``) is not named: its message says what happened
    in words, and its name would mean nothing to whoever reads the line."""
    text = exc.task_failed if isinstance(exc, TaskFailedError) else str(exc)
    kind = type(exc)
    if kind.__name__.startswith("_") and kind.__module__.startswith("cascade.") and text:
        return text
    return f"{kind.__name__}: {text}"


def explain(exc: BaseException) -> str:
    """For the log: :func:`describe`, and an exception without a message says so."""
    return describe(exc) if str(exc) else f"{type(exc).__name__} (without a message)"


class StepFailed(CascadeError):
    """A connector step failed; the message says which, and why or after how long."""


@contextlib.asynccontextmanager
async def within(what: str, seconds: float, option: str) -> AsyncIterator[None]:
    """Bound a connector step to ``seconds``; any failure becomes :class:`StepFailed`.

    Its message names the step and, for a timeout, the limit and the option
    that set it: a bare ``TimeoutError`` says neither.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with bounded(seconds):
            yield
    except asyncio.TimeoutError as exc:
        if loop.time() - started >= seconds:
            raise StepFailed(f"{what} did not finish within {seconds:g} s ({option})") from None
        raise StepFailed(f"{what} failed: {explain(exc)}") from None
    except Exception as exc:
        raise StepFailed(f"{what} failed: {explain(exc)}") from None
