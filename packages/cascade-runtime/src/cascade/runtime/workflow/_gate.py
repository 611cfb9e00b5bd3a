"""``gate``: a task held from its start for a person's decision, and what its rejection raises."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, Literal, TypeAlias

from cascade.interfaces.wire import MAX_PROMPT_LENGTH

from .._errors import CascadeRuntimeError
from ._param import Param
from ._task import LazyResult, Task, TaskOptions

__all__ = [
    "GATE_DEFAULTS",
    "Gate",
    "GateDefault",
    "GateError",
    "GateRejected",
    "gate",
    "prompt_text",
]

GateDefault: TypeAlias = Literal["fail", "skip", "complete"]
"""What a gate takes at its deadline: rejected, skipped, or approved (its value ``True``)."""
GATE_DEFAULTS: tuple[GateDefault, ...] = ("fail", "skip", "complete")


class GateError(CascadeRuntimeError, ValueError):
    """A :func:`gate`'s argument is not one it takes (its message names which), or an option
    that does not apply to a gate was asked of it (``with_retry``, ``with_timeout``)."""


class GateRejected(CascadeRuntimeError):
    """A gate was rejected (``fail``): by ``by`` (``None``: nobody named, or its deadline's
    default: ``deadline``), for ``reason``. The gate's task fails with it, its dependents are
    skipped."""

    def __init__(
        self, by: str | None = None, reason: str | None = None, deadline: bool = False
    ) -> None:
        self.by = by
        self.reason = reason
        self.deadline = deadline
        if deadline:
            said = "rejected at its deadline (no decision came)"
        else:
            said = f"rejected by {by}" if by else "rejected"
            if reason:
                said += f": {reason}"
        super().__init__(said)


def _approval() -> bool:
    """A gate's function: never called (a gate is held, then decided), there for its
    fingerprint."""
    raise GateError("a gate never runs: a decision ends it")


class Gate(Task[[], Any]):
    """The task of every :func:`gate` of one name: held from its start, no attempt runs.

    ``hold_timeout`` is its deadline (``None``: the engine's ``hold_timeout``) and
    ``hold_default`` what is taken then (:data:`GATE_DEFAULTS`).
    """

    awaits_approval = True

    def __init__(self, name: str, deadline: float | None, default: GateDefault) -> None:
        super().__init__(_approval, TaskOptions(name=name, hold_timeout=deadline))
        self.hold_default = default

    def _copy(self, **changed: Any) -> Task[[], Any]:
        asked = "with_retry" if "retry" in changed else "with_timeout"
        raise GateError(
            f"{asked} does not apply to a gate: it has no attempt (its deadline bounds its wait)"
        )

    def __repr__(self) -> str:
        return f"<Gate {self.name}>"


def _seconds(deadline: object) -> float | None:
    if deadline is None:
        return None
    seconds = deadline.total_seconds() if isinstance(deadline, timedelta) else deadline
    if (
        isinstance(seconds, (int, float))
        and not isinstance(seconds, bool)
        and 0 < seconds < math.inf
    ):
        return float(seconds)
    raise GateError(f"a gate's deadline is finite seconds above 0 or a timedelta, not {deadline!r}")


def gate(
    prompt: str | LazyResult[Any] | Param[Any],
    *,
    deadline: float | timedelta | None = None,
    default: GateDefault = "fail",
    name: str | None = None,
) -> LazyResult[Any]:
    """A task that waits for a person: held from its start, its ``prompt`` shown to whoever
    decides, until a decision on it or its deadline.

    ``complete`` approves it: its result is the decision's (``True`` when it gives none), what
    its dependents get. ``fail`` rejects it: it fails with :class:`GateRejected` (``rejected by
    alice: not today``), its dependents skipped. ``skip`` skips it and its dependents. A
    ``retry`` is refused (``not_retryable``): a gate has no attempt. Decisions come from
    :meth:`Engine.decide <cascade.runtime.Engine.decide>`, ``cascade complete|fail|skip RUN
    TASK`` and the dashboard's "Needs a decision", and are audited as every decision.

    ``prompt``: text (1 to :data:`~cascade.interfaces.MAX_PROMPT_LENGTH` characters), or a lazy
    result or :class:`~cascade.runtime.Param` whose value is the text (the gate waits for it;
    a longer text is cut). ``deadline``: seconds or a ``timedelta`` after which ``default``
    is taken (``"fail"``, ``"skip"``, or ``"complete"``: approved, ``True``); ``None``: the
    engine's ``hold_timeout`` (24 h by default). ``name``: the task's name (``gate``). A bad
    argument raises :class:`GateError` naming it.
    """
    if isinstance(prompt, str):
        if not prompt.strip() or len(prompt) > MAX_PROMPT_LENGTH:
            raise GateError(
                f"a gate's prompt is text of 1 to {MAX_PROMPT_LENGTH} characters, not "
                f"{len(prompt)} characters"
                if prompt.strip()
                else "a gate's prompt is text of 1 or more characters, not blank"
            )
    elif not isinstance(prompt, (LazyResult, Param)):
        raise GateError(
            "a gate's prompt is text, or a lazy result or Param whose value is, not "
            f"{type(prompt).__name__}"
        )
    if default not in GATE_DEFAULTS:
        raise GateError(f"a gate's default is one of {', '.join(GATE_DEFAULTS)}, not {default!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise GateError(f"a gate's name is a non-empty string, not {name!r}")
    return LazyResult(Gate(name or "gate", _seconds(deadline), default), (prompt,), {})


def prompt_text(value: Any) -> str:
    """A gate's prompt as its hold carries it: ``value`` (its resolved argument) as text, cut
    at :data:`~cascade.interfaces.MAX_PROMPT_LENGTH` characters."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a value whose str() fails still lets the gate be held and decided
        text = f"<{type(value).__name__}>"
    if len(text) > MAX_PROMPT_LENGTH:
        text = text[: MAX_PROMPT_LENGTH - 1] + "…"
    return text
