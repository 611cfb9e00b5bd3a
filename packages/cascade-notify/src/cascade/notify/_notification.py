"""What a notification says: one event of the fleet, with what a person needs to act on it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EVENTS", "DEFAULT_EVENTS", "Notification", "last_line"]

EVENTS = (
    "run.failed",
    "run.succeeded",
    "task.held",
    "hold.deadline",
    "engine.lost",
    "run.carried_on",
    "run.lost",
)
"""Every kind of event a notifier can post."""

DEFAULT_EVENTS = (
    "run.failed",
    "task.held",
    "hold.deadline",
    "engine.lost",
    "run.carried_on",
    "run.lost",
)
"""The kinds posted unless told otherwise (``run.succeeded`` is asked for by name)."""


@dataclass(frozen=True)
class Notification:
    """One event to post.

    ``key`` names the event itself, the same in every notifier that sees it (``run.failed:RUN``,
    ``task.held:RUN:TASK:ATTEMPT``, ``hold.deadline:RUN:TASK:ATTEMPT``,
    ``engine.lost:SOURCE:SESSION``, ``run.carried_on:RUN``, ``run.lost:RUN``): what
    deduplication goes by. Text fields are the senders' words, cut to the reader model's
    bounds; bodies carry them as JSON strings.
    """

    kind: str
    key: str
    at: float
    """When the event happened, as far as the notifier can tell (epoch seconds)."""
    org_id: str = ""
    project_id: str = ""
    run_id: str = ""
    run_name: str | None = None
    workflow: str | None = None
    """The served workflow that started the run, where one did."""
    source: str = ""
    """The engine (its source id)."""
    task_id: str | None = None
    task_name: str | None = None
    attempt: int | None = None
    error: str = ""
    error_line: str = ""
    """The last line of the failed attempt's traceback (the exception as Python printed it),
    else the error."""
    deadline: float | None = None
    """A hold's deadline (epoch seconds): when its ``default`` applies."""
    default: str | None = None
    prompt: str | None = None
    """A gate's question."""
    runs: tuple[str, ...] = field(default_factory=tuple)
    """``engine.lost``: the runs it was running, as far as this notifier knew."""
    url: str | None = None
    """The run's page on the dashboard, when its address is known."""
    carried_on_from: str | None = None
    """``run.carried_on``: the run it carries on, whose engine (``lost_engine``) died."""
    lost_engine: str | None = None


def last_line(traceback: str | None, error: str) -> str:
    """The traceback's last line that says something (the exception), else ``error``."""
    for line in reversed((traceback or "").splitlines()):
        if line.strip() and not line.startswith("…"):
            return line.strip()
    return error
