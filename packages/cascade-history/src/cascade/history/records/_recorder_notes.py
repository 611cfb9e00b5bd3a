"""What a recorder says of itself as it records (:class:`RecorderNote`): written every few
seconds by its writer, read by the dashboard, whose header says a recorder that does not keep
up while it happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._text import clean
from ..store._inserts import INT64, insert_for
from ..store._schema import recorder_notes

__all__ = ["RecorderNote", "note_recorder", "recorder_notes_query"]


@dataclass(frozen=True, slots=True)
class RecorderNote:
    """A recorder's latest word on itself (:meth:`History.recorders
    <cascade.history.History.recorders>`).

    ``noted_at``: when it wrote it (epoch seconds; a recorder notes every few seconds while it
    runs, so an old note is a recorder stopped or stuck). ``behind_since``: since when it has
    not kept up with the broker (its queue a tenth full, or its connector shedding what it
    could not read: :attr:`RecorderStats.behind <cascade.history.RecorderStats.behind>`),
    ``None`` while it keeps up. ``queued``, ``lag`` (seconds the oldest message queued has
    waited), ``dropped`` and ``shed``: its :class:`~cascade.history.RecorderStats` then.
    """

    recorder: str
    noted_at: float
    behind_since: float | None
    queued: int
    lag: float
    dropped: int
    shed: int

    @property
    def behind(self) -> bool:
        """Whether it said it does not keep up."""
        return self.behind_since is not None

    def to_json(self) -> dict[str, Any]:
        """This note as a JSON object."""
        return {
            "recorder": self.recorder,
            "noted_at": self.noted_at,
            "behind_since": self.behind_since,
            "queued": self.queued,
            "lag": self.lag,
            "dropped": self.dropped,
            "shed": self.shed,
        }


def note_recorder(connection: sa.Connection, note: RecorderNote) -> None:
    """Keep ``note`` as its recorder's latest (its name kept to 1,024 bytes, counts to 64
    bits)."""
    row = {
        "recorder": clean(note.recorder),
        "noted_at": note.noted_at,
        "behind_since": note.behind_since,
        "queued": min(note.queued, INT64),
        "lag": note.lag,
        "dropped": min(note.dropped, INT64),
        "shed": min(note.shed, INT64),
    }
    statement = insert_for(connection)(recorder_notes)
    columns = {key: statement.excluded[key] for key in row if key != "recorder"}
    connection.execute(
        statement.on_conflict_do_update(index_elements=["recorder"], set_=columns), row
    )


def recorder_notes_query(connection: sa.Connection, since: float | None) -> list[RecorderNote]:
    """The recorders' notes, the latest first; ``since``: those noted since then."""
    table = recorder_notes
    query = sa.select(table).order_by(table.c.noted_at.desc(), table.c.recorder)
    if since is not None:
        query = query.where(table.c.noted_at >= since)
    return [
        RecorderNote(
            row.recorder, row.noted_at, row.behind_since, row.queued, row.lag, row.dropped, row.shed
        )
        for row in connection.execute(query)
    ]
