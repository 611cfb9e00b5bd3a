"""The one error steering raises for input it refuses: nothing was sent."""

from __future__ import annotations

from cascade.interfaces import CascadeError

__all__ = ["ControlError"]


class ControlError(CascadeError, ValueError):
    """A control's input is invalid; nothing was sent.

    :attr:`field` names the input at fault, as :class:`~cascade.control.Controller` takes it
    (``scope``, ``ttl``, ``concurrency``, ``rate``, ``type``, ``reason``, ``issued_by``,
    ``username``, ``run_id``); the message speaks of it by that name (``ttl must be ...``),
    so a face (the CLI, the dashboard) can say it in its own words.
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
