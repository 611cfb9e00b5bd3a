"""A run's report: the one read of what a recorded run came to, that `cascade run` renders
(and `cascade watch`, for a run that ended while it watched): the run with its tasks counted
by state and a first page of its tasks, its slowest tasks, its first failures, its tasks held
for a decision, the decisions its engine answered, the results it reused, and what its tasks
logged, and its maps with their items counted (a map's row stands for its items in the first
page), its loops with their iterations too. Each part is read in SQL, all in one transaction,
so a run of any size costs a few queries, not its every task."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..audit._decisions import run_decisions
from ..audit._lineage import reused_query
from ..records._attempts import DecisionRecord
from ..records._log_records import LogBatches, LogCount
from ..records._records import RunDetail, TaskHistory
from ._log_queries import log_batches_query, log_counts_query
from ._loops import LoopIterations, loop_iterations_query
from ._maps import MapItems, map_items_query
from ._queries import Among
from ._run_query import TaskOrder, count_query, ranked_query, run_query
from ._task_filters import FINISHED_STATES

__all__ = ["SUMMARY_TASKS", "RunReport", "report_query"]

SUMMARY_TASKS = 5
"""The slowest tasks, the first failures and the held tasks a run's report holds at most."""
_DECISIONS = 1000  # the decisions a report holds at most (the first received)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a recorded run came to (:meth:`History.report <cascade.history.History.report>`).

    ``detail``: the run, its tasks counted by state, and the first page of the tasks the
    report's filters pick; ``slowest``: its :data:`SUMMARY_TASKS` longest finished tasks with
    a duration, the longest first; ``failures``: its first failed tasks, in the order they
    failed; ``held``: its first tasks held for a decision now, the longest held first;
    ``matched``: how many tasks the filters pick (every task without them); ``decisions``:
    its engine's answers to the decisions on its holds, in the order received (the first
    1,000); ``reused``:
    per run its reused results came from, how many of its tasks took one (a rerun's only);
    ``logs``: per task id, the lines it logged and those dropped (empty: the run has none);
    ``log_batches``: its log batches as numbered by its engine (``None``: it has no logs);
    ``maps``: its maps (``task.map(...)``), by task id, each with its items counted by state;
    ``folded``: the maps' items left out of ``detail``'s tasks and of ``matched``, as each
    map's own task stands for them there (0: every task picked is listed);
    ``loops``: its loops (``cs.Jump``), by task id, each with its iterations counted by state
    and its latest one; ``folded_iterations``: the loops' iterations left out of ``detail``'s
    tasks and of ``matched``, as each loop's own task stands for them there.
    """

    detail: RunDetail
    slowest: list[TaskHistory]
    failures: list[TaskHistory]
    matched: int
    held: list[TaskHistory] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    reused: dict[str, int] = field(default_factory=dict)
    logs: dict[str, LogCount] = field(default_factory=dict)
    log_batches: LogBatches | None = None
    maps: list[MapItems] = field(default_factory=list)
    folded: int = 0
    loops: list[LoopIterations] = field(default_factory=list)
    folded_iterations: int = 0


def report_query(
    connection: sa.Connection,
    run_id: str,
    *,
    limit: int | None = None,
    states: Collection[str] | None = None,
    name_glob: str | None = None,
    among: Among | None = None,
    items: bool = False,
    item_of: str | None = None,
) -> RunReport | None:
    """The report of the run ``run_id`` (its id, or a prefix only it has; of ``among``'s runs
    only, when given), its first page of at most ``limit`` of the tasks ``states`` and
    ``name_glob`` pick (:func:`run_query`; ``states`` in any case); ``None`` for an unknown
    run. The tasks picked are counted apart only for a name glob (states alone: the run's
    counts say). Without a filter, maps' items and loops' iterations are left out of the page
    and of ``matched`` (their maps, their loops stand for them) unless ``items``; a filter
    picks them as any task. ``item_of``: the page and ``matched`` are the items of the map,
    or the iterations of the loop, whose task id it is (its row expanded), those the filters
    pick."""
    fold = not items and states is None and name_glob is None and item_of is None
    first = run_query(
        connection,
        run_id,
        limit=limit,
        states=states,
        name_glob=name_glob,
        among=among,
        items=not fold,
        item_of=item_of,
    )
    if first is None:
        return None
    run = first.run
    found = run.run_id
    counts = run.tasks
    maps = map_items_query(connection, found)
    folded = sum(entry.items for entry in maps) if fold else 0
    loops = loop_iterations_query(connection, found)
    folded_iterations = sum(entry.iterations for entry in loops) if fold else 0
    if name_glob is not None or item_of is not None:
        matched = count_query(
            connection, found, states=states, name_glob=name_glob, item_of=item_of
        )
    else:
        wanted = None if states is None else {state.upper() for state in states}
        matched = sum(n for state, n in counts.items() if wanted is None or state in wanted)
        matched = max(0, matched - folded - folded_iterations)

    def first_of(order: TaskOrder, *picked: str) -> list[TaskHistory]:
        return ranked_query(connection, found, order=order, limit=SUMMARY_TASKS, states=picked)

    slowest = first_of("longest", *FINISHED_STATES)
    return RunReport(
        detail=first,
        slowest=[task for task in slowest if task.duration_ms > 0],  # 0 s says nothing
        failures=first_of("earliest", "FAILED"),
        matched=matched,
        held=first_of("earliest", "HELD") if counts.get("HELD") else [],
        decisions=run_decisions(connection, found, _DECISIONS),
        reused=reused_query(connection, found) if run.rerun_of is not None else {},
        logs=log_counts_query(connection, found),
        log_batches=log_batches_query(connection, found),
        maps=maps,
        folded=folded,
        loops=loops,
        folded_iterations=folded_iterations,
    )
