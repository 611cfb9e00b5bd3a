"""What a task asks of the engine's system resources (``with_constraints``): the amounts as
written, checked as far as they are known, and the error for a request no engine can meet."""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeAlias

from .._errors import CascadeRuntimeError

__all__ = ["Amounts", "CapacityError", "amount_of"]

Amounts: TypeAlias = tuple[tuple[str, Any], ...]
"""A task's request as written: ``(resource, amount)`` pairs, each amount a number, a lazy
result or a :class:`~cascade.runtime.Param` (known when the task is about to start)."""


class CapacityError(CascadeRuntimeError, ValueError):
    """A system resource request that cannot be met, or a capacity that cannot be had.

    A task's: an amount that is not a number of at least 0 (raised by ``with_constraints``
    where the amount is written, or failing the task where an upstream result or a
    parameter gave it), a resource the engine has no capacity for, or more than its
    capacity (failing the task at once: it could never start). An engine's: a
    ``system_resources`` whose capacity is not a number above 0 (raised by ``Engine``).
    """


def amount_of(resource: str, value: object) -> float:
    """``value`` as an amount of ``resource``: a finite number of at least 0 (not a bool),
    else :class:`CapacityError` naming both."""
    amount = math.nan
    if not isinstance(value, bool) and isinstance(value, numbers.Real):
        amount = float(value)
    if math.isfinite(amount) and amount >= 0:
        return amount
    raise CapacityError(f"the amount of {resource} must be a number of at least 0, not {value!r}")
