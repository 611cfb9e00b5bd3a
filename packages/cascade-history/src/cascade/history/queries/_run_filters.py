"""Which runs a list of them means: :meth:`History.runs`' and :meth:`History.count_runs`'
filters as one value, the conditions on ``runs`` they make, and the two queries they
filter."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict

import sqlalchemy as sa

from ..records._records import RunSummary
from ..store._schema import runs, task_events
from ._queries import LOST, RUN_COLUMNS, Among, among_filter, status_name, summaries

__all__ = ["RunFilters", "count_runs_query", "run_conditions", "runs_query"]


class RunFilters(TypedDict, total=False):
    """The filters of :meth:`History.runs` and :meth:`History.count_runs`, each optional
    (``None`` or left out: any).

    ``since``: runs first received since then (an aware datetime or epoch seconds, or a
    timedelta: that long ago; the history's clock, not the messages'). ``status``:
    ``running``, ``succeeded``, ``failed``, ... (any case; ``ValueError`` for another).
    ``project``, ``source``: exactly those. ``task``: runs with a task of that name.
    ``name``: the runs of that name (:attr:`RunSummary.name`), exactly. ``schedule``: the runs
    that schedule started (:attr:`RunSummary.schedule`). ``trigger``: the runs that trigger
    started (its name, as their ``origin["trigger"]`` says). ``among``: the runs of these orgs
    (``(org, None)``) and projects (``(org, project)``) only (what someone may see; none when
    empty).
    """

    since: datetime | timedelta | float | None
    status: str | None
    project: str | None
    task: str | None
    source: str | None
    among: Among | None
    name: str | None
    schedule: str | None
    trigger: str | None


def run_conditions(filters: RunFilters, since: float | None) -> list[sa.ColumnElement[bool]]:
    """The conditions on ``runs`` that ``filters`` say (``since`` theirs as epoch seconds)."""
    where: list[sa.ColumnElement[bool]] = []
    if since is not None:
        where.append(runs.c.received_at >= since)
    status = filters.get("status")
    if status is not None:
        wanted = status_name(status)
        if wanted == "Lost":
            where.append(LOST)
        elif wanted == "Running":
            where += [runs.c.status == wanted, ~LOST]
        else:
            where.append(runs.c.status == wanted)
    for column, value in (
        (runs.c.project_id, filters.get("project")),
        (runs.c.source, filters.get("source")),
        (runs.c.name, filters.get("name")),
        (runs.c.schedule, filters.get("schedule")),
        (runs.c.trigger, filters.get("trigger")),
    ):
        if value is not None:
            where.append(column == value)
    among = filters.get("among")
    if among is not None:
        where.append(among_filter(among))
    task = filters.get("task")
    if task is not None:
        where.append(
            sa.exists().where(
                task_events.c.run_id == runs.c.run_id, task_events.c.task_name == task
            )
        )
    return where


def runs_query(
    connection: sa.Connection, filters: RunFilters, since: float | None, limit: int
) -> list[RunSummary]:
    """Runs newest first (by start), filtered as :meth:`History.runs` says."""
    query = sa.select(*RUN_COLUMNS).order_by(runs.c.started_at.desc(), runs.c.run_id)
    query = query.limit(limit).where(*run_conditions(filters, since))
    return summaries(connection, connection.execute(query).all())


def count_runs_query(connection: sa.Connection, filters: RunFilters, since: float | None) -> int:
    """How many runs :func:`runs_query` would list, without a limit."""
    query = sa.select(sa.func.count()).select_from(runs).where(*run_conditions(filters, since))
    return int(connection.execute(query).scalar_one())
