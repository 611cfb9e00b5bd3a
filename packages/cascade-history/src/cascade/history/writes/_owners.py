"""Who owns each run in the history, and a run taken over by a source something vouches for.

A run belongs to the source stored for it (``runs.source``), or, new, to the first of a batch.
What vouches for that source (``runs.vouched``: its start, its sourced topic, its online status;
``_vouches``) decides whether another may take the run over: a run whose source nothing vouched
for goes to the first source something does, and what the first said of it (its events, runs
row and logs) is set aside, counted in ``run_claims`` under its name, with the messages of other
sources refused as the run's (``claim_rows``). So a forger heard first no longer keeps the run
from its engine: the history says which source was believed, why, and who else claimed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cascade.interfaces import Envelope, InvalidMessageError
from cascade.interfaces.commands import CancelReply, DecisionReply
from cascade.interfaces.logs import LogBatch

from .._received import Received
from .._text import checked_id
from ..store._inserts import INT64, adding_upsert
from ..store._schema import (
    log_batches,
    log_lines,
    log_runs,
    log_tasks,
    run_claims,
    run_events,
    runs,
    task_events,
)

__all__ = [
    "Owner",
    "add_claims",
    "claim_rows",
    "set_aside_displaced",
    "settle_owners",
    "stored_owners",
]

Owner = tuple[str, "str | None"]
"""A run's source and what vouches for it (``None``: only its word)."""


def stored_owners(
    connection: sa.Connection, batch: Sequence[Received], vouched: Mapping[str, Any] = {}
) -> dict[str, Owner]:
    """The sources stored for the runs ``batch`` (and ``vouched``) is about (a run known only
    by its logs belongs to the source of its logs, with nothing to vouch for it)."""
    ids = {
        item.message.run_id
        for item in batch
        if isinstance(item.message, (Envelope, CancelReply, DecisionReply, LogBatch))
        and isinstance(item.message.run_id, str)
    }
    listed = sorted(ids.union(vouched))
    owners: dict[str, Owner] = {}
    for start in range(0, len(listed), 500):
        query = sa.select(runs.c.run_id, runs.c.source, runs.c.vouched).where(
            runs.c.run_id.in_(listed[start : start + 500])
        )
        owners.update((run_id, (source, why)) for run_id, source, why in connection.execute(query))
    unknown = [run_id for run_id in listed if run_id not in owners]
    for start in range(0, len(unknown), 500):
        query = (
            sa.select(log_batches.c.run_id, sa.func.min(log_batches.c.source))
            .where(log_batches.c.run_id.in_(unknown[start : start + 500]))
            .group_by(log_batches.c.run_id)
        )
        for row in connection.execute(query):
            owners[row[0]] = (row[1], None)
    return owners


def settle_owners(
    connection: sa.Connection,
    owners: dict[str, Owner],
    vouched: Mapping[str, tuple[str, str]],
    at: float,
) -> list[dict[str, Any]]:
    """Apply what vouches for the runs' sources (``vouched``: run id to source and what
    vouches) to ``owners`` and the database: a run stored with nothing vouching for its source
    is taken over by the source something vouches for (what the first said of it is set
    aside), or its own source comes to be vouched for. The ``run_claims`` rows of what was
    set aside."""
    claims = []
    for run_id, (source, why) in sorted(vouched.items()):
        owner = owners.get(run_id)
        if owner is None:
            owners[run_id] = (source, why)  # a run new to the history: its row says why
        elif owner[1] is not None:
            continue  # believed already, for a reason: another source stays refused
        elif owner[0] == source:
            connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id, runs.c.vouched.is_(None))
                .values(vouched=why)
            )
            owners[run_id] = (source, why)
        else:
            set_aside = _set_aside(connection, run_id)
            claims.append(
                {
                    "run_id": run_id,
                    "source": owner[0],
                    "refused": 0,
                    "set_aside": set_aside,
                    "last_at": at,
                }
            )
            owners[run_id] = (source, why)
    return claims


def set_aside_displaced(
    connection: sa.Connection, owners: dict[str, Owner], displaced: Mapping[str, int]
) -> set[tuple[str, int]]:
    """Set aside what the history holds of each run whose count rested on one event far above
    the numbers that came after it (``displaced``: run id to that event's number): the run
    is stored anew from what follows, its owner found anew. The ``(run id, seq)`` of those
    events, to refuse should the batch hold them; each is counted refused on its run."""
    withdrawn = set()
    for run_id, seq in sorted(displaced.items()):
        _set_aside(connection, run_id)
        owners.pop(run_id, None)
        withdrawn.add((run_id, seq))
    return withdrawn


def _set_aside(connection: sa.Connection, run_id: str) -> int:
    """Delete what the history holds of ``run_id`` from a source no longer believed; how many
    of its events (and log lines) went."""
    gone = 0
    for table in (task_events, run_events, log_lines):
        gone += connection.execute(sa.delete(table).where(table.c.run_id == run_id)).rowcount
    for table in (log_batches, log_runs, log_tasks, runs):
        connection.execute(sa.delete(table).where(table.c.run_id == run_id))
    return gone


def claim_rows(claims: Mapping[tuple[str, str], int], at: float) -> list[dict[str, Any]]:
    """The ``run_claims`` changes of messages refused as another source's (per run id and
    source), at ``at`` (ids the protocol refuses are left out)."""
    rows = []
    for (run_id, source), count in sorted(claims.items()):
        try:
            ids = checked_id(run_id, "run_id"), checked_id(source, "source")
        except InvalidMessageError:
            continue
        rows.append(
            {
                "run_id": ids[0],
                "source": ids[1],
                "refused": min(count, INT64),
                "set_aside": 0,
                "last_at": at,
            }
        )
    return rows


def add_claims(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Add each row's counts to its run's and source's."""
    if rows:
        upsert = adding_upsert(
            connection.dialect.name, run_claims, ("run_id", "source"), ("refused", "set_aside")
        )
        connection.execute(upsert, rows)
