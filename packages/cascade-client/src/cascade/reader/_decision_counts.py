"""What a reader counts of the decisions people took on a run's held tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DecisionCount"]

_DONE = {"retry": "retried", "skip": "skipped", "complete": "completed", "fail": "failed"}


@dataclass(frozen=True, slots=True)
class DecisionCount:
    """Decisions of one kind one person took on a run's held tasks, applied by its engine:
    ``decision`` (``retry``, ``skip``, ``complete``, ``fail``), ``by`` (who asked, as the
    request said; ``None``: not said), ``count``. ``str()``: ``1 skipped by ops-1``. What
    the history's lists and a live reader's runs both count (``RunSummary.decisions``,
    ``RunView.decisions()``)."""

    decision: str
    by: str | None
    count: int

    @property
    def done(self) -> str:
        """The decision as done: ``retried``, ``skipped``, ``completed``, ``failed``."""
        return _DONE.get(self.decision, self.decision)

    def __str__(self) -> str:
        return f"{self.count:,} {self.done} by {'someone unnamed' if self.by is None else self.by}"

    def to_json(self) -> dict[str, Any]:
        """These decisions as a JSON object."""
        return {"decision": self.decision, "by": self.by, "count": self.count}
