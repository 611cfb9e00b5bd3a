"""What a cancel stopped of a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from cascade.interfaces import TaskRef

__all__ = ["CancelReport"]


@dataclass(frozen=True)
class CancelReport:
    """What :meth:`Engine.cancel <cascade.runtime.Engine.cancel>` cancelled of a run.

    ``cancelled``: its coroutine tasks that were running, now cancelled. ``abandoned``:
    its plain-function tasks running in threads, which Python cannot stop: they run to
    their end and their results are discarded. ``not_started``: how many of its tasks
    will not start. ``already``: an earlier cancel had cancelled it (the lists are then
    what was still running).
    """

    run_id: str
    cancelled: list[TaskRef] = field(default_factory=list)
    abandoned: list[TaskRef] = field(default_factory=list)
    not_started: int = 0
    already: bool = False
