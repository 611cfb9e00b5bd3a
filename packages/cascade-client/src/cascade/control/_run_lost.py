"""A decision on a run that is lost: refused at once, saying where the run went, instead of
waiting for an answer no engine can give (its engine went offline before the run's end)."""

from __future__ import annotations

from datetime import datetime, timezone

from cascade.interfaces import CascadeError
from cascade.reader import SHOWN, LostRun, ReaderModel, inert, lost_run

__all__ = ["RunLostError", "refuse_lost"]


class RunLostError(CascadeError):
    """A decision or cancel on a run the caller's reader knows lost (its engine went offline,
    the broker's word, before the run's end): no engine can take it, so nothing was sent.

    Its fields say where the run went, for a face to say it its own way: :attr:`run_id`,
    :attr:`engine` (the source that died with it), :attr:`lost_at` (epoch seconds; ``None``:
    not known), :attr:`carried_on_as` and :attr:`carried_on_by` (the run and server that carry
    it on; ``None``: none known: decide on nothing, rerun it). The message says it all in
    one line: ``run R was lost at T when its engine E went offline; carried on as R2 at S:
    decide there``.
    """

    def __init__(self, lost: LostRun) -> None:
        self.lost = lost
        self.run_id = lost.run_id
        self.engine = lost.engine
        self.lost_at = lost.lost_at
        self.carried_on_as = lost.carried_on_as
        self.carried_on_by = lost.carried_on_by
        super().__init__(_said(lost))


def _said(lost: LostRun) -> str:
    run = inert(lost.run_id, SHOWN["name"])
    engine = inert(lost.engine, SHOWN["source"])
    when = ""
    if lost.lost_at is not None:
        at = datetime.fromtimestamp(lost.lost_at, timezone.utc)
        when = f" at {at.isoformat(timespec='seconds').replace('+00:00', 'Z')}"
    said = f"run {run} was lost{when} when its engine {engine} went offline; "
    if lost.carried_on_as is None:
        return said + f"no server is known to carry it on (`cascade rerun {run}` does)"
    carried = inert(lost.carried_on_as, SHOWN["name"])
    by = inert(lost.carried_on_by or "another server", SHOWN["source"])
    return said + f"carried on as {carried} at {by}: decide there"


def refuse_lost(reader: ReaderModel | None, run_id: str) -> None:
    """Raise :class:`RunLostError` when ``reader`` knows ``run_id`` lost
    (:func:`~cascade.reader.lost_run`); nothing without a reader."""
    if reader is None:
        return
    lost = lost_run(reader, run_id)
    if lost is not None:
        raise RunLostError(lost)
