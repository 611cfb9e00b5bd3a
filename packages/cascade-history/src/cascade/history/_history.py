"""``History``: one database of what happened — runs, tasks, their logs, engines' presence,
constraints."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

import sqlalchemy as sa
from typing_extensions import Self, Unpack

from cascade.reader import SourceGaps

from ._errors import HistoryError, HistoryMissing, LocationError, from_database_error
from ._received import Received
from ._times import since_epoch
from .access._access import access_row, count_access, insert_access
from .access._sessions import DashboardSession, insert_session, list_sessions, revoke_sessions
from .access._tokens import (
    ApiToken,
    NewToken,
    find_token,
    insert_token,
    list_tokens,
    revoke_token,
    token_used,
)
from .audit._decisions import run_decisions
from .audit._lineage import reused_query
from .audit._notify_posts import (
    NotifyPost,
    PostClaim,
    claim_post,
    end_post,
    insert_post,
    prune_post_claims,
)
from .audit._notify_webhooks import NotifyWebhook, delete_webhook, insert_webhook, list_webhooks
from .queries._graphs import RecordedGraph, graph_query
from .queries._log_queries import (
    log_batches_query,
    log_counts_query,
    log_lines_query,
    runs_logging_query,
)
from .queries._loops import LoopIterations, loop_iterations_query
from .queries._maps import MapItems, map_items_query
from .queries._queries import (
    audit_query,
    executions_query,
    gaps_query,
    glob_to_like,
    lineage_query,
    run_ids_query,
    status_name,
    tasks_query,
)
from .queries._report import RunReport, report_query
from .queries._run_filters import RunFilters, count_runs_query, runs_query
from .queries._run_query import TaskOrder, count_query, ranked_query, run_query
from .records._attempts import DecisionRecord
from .records._audit_records import AuditEvent
from .records._log_records import LogBatches, LogCount, RecordedLogLine
from .records._recorder_notes import RecorderNote, note_recorder, recorder_notes_query
from .records._records import (
    Execution,
    RunDetail,
    RunSummary,
    SourceGap,
    Stored,
    TaskHistory,
    TaskStats,
)
from .store._engine import WRITE, create_engine
from .store._location import describe, resolve_url
from .store._migrate import upgrade
from .store._readable import check_readable, has_tables, refuse_foreign
from .writes._ingest import gap_rows, refusal_rows, store_batch
from .writes._owners import claim_rows
from .writes._prune import LINES_A_PRUNE, prune_log_lines, prune_runs
from .writes._rollup import exact_enough, rollup_stats

__all__ = ["TASKS_PAGE", "History", "Mode"]

TASKS_PAGE = 500
"""The tasks in a page of :meth:`History.run_pages` (and of the dashboard's run)."""

_T = TypeVar("_T")
Since = datetime | timedelta | float | None
Mode = Literal["read", "write"]
"""How a :class:`History` opens its database: ``read`` never changes it, ``write`` may."""


class History:
    """A history database: its schema, its migrations, what is written to it and read from it.

    ``url`` is a SQLAlchemy URL (``sqlite:///path``, ``postgresql://user@host/db``),
    a path to a SQLite file, or ``None`` for the default file in the user's
    data directory (:attr:`location` says which). PostgreSQL needs the
    ``[postgresql]`` extra (psycopg 3). Raises :class:`HistoryError` (one line
    saying what to do) when the database cannot be opened.

    ``mode="read"`` (the default) never changes the database: a SQLite file is
    opened read-only (``immutable`` on read-only media), a PostgreSQL session
    is read-only, and nothing is created or migrated. Opening fails when there
    is no history there yet, when the database is not a Cascade history, or
    when its schema revision is not this code's (older: migrate it; newer:
    upgrade Cascade). :meth:`store` and :meth:`prune` raise :class:`HistoryError`.

    ``mode="write"`` (recorders, and migrating on purpose) creates the schema,
    or migrates an older one keeping its data (``migrate=False``: opens the
    database as it is).

    Methods block: call them from a thread (``asyncio.to_thread``) in async
    code, as :class:`~cascade.history.Recorder` does. One ``History`` may be
    used from several threads; several processes may share a database (SQLite
    in WAL mode: readers never wait on the writer).
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        mode: Mode = "read",
        migrate: bool = True,
    ) -> None:
        if mode not in ("read", "write"):
            raise ValueError(f"mode must be 'read' or 'write', not {mode!r}")
        try:
            self.url = resolve_url(url)
        except ValueError as exc:
            raise LocationError(str(exc)) from None
        self.mode: Mode = mode
        """``read`` or ``write``: as opened."""
        self.location = describe(self.url)
        """Where the database is, for people: a SQLite file's path, else its URL (no password)."""
        readonly = mode == "read"
        database = self.url.database
        sqlite_file = self.url.get_backend_name() == "sqlite" and database not in (
            None,
            "",
            ":memory:",
        )
        if readonly and sqlite_file and not Path(str(database)).exists():
            hint = "cascade record" if url is None else f"cascade record --db {self.location}"
            raise HistoryMissing(
                f"no history at {self.location} yet: record one with {hint}", Path(str(database))
            )
        try:
            self._engine = create_engine(self.url, readonly=readonly)
        except ImportError as exc:
            raise HistoryError(
                f"cannot open {self.location}: {exc.name or exc} is not installed "
                "(PostgreSQL: pip install 'cascade-history[postgresql]')"
            ) from None
        except OSError as exc:  # the SQLite file's folder cannot be made
            raise HistoryError(f"cannot open {self.location}: {exc}") from None
        except sa.exc.ArgumentError as exc:  # a scheme that names no database SQLAlchemy has
            raise HistoryError(f"cannot open {self.location}: {exc}") from None
        try:
            if readonly and sqlite_file and not self._read(has_tables, "cannot open"):
                # made, but its first migration (one transaction) is not in yet: a recorder
                # started in the same second is making it, as it makes a missing one
                hint = "cascade record" if url is None else f"cascade record --db {self.location}"
                raise HistoryMissing(
                    f"no history at {self.location} yet (the file has no tables yet): record "
                    f"one with {hint}",
                    Path(str(database)),
                )
            if readonly:
                self._read(lambda c: check_readable(c, self.location), "cannot open")
            elif migrate:
                self._refuse_foreign(sqlite_file)
                upgrade(self._engine)
        except sa.exc.SQLAlchemyError as exc:
            self._engine.dispose()
            raise from_database_error(f"cannot open {self.location}", exc) from None
        except HistoryError:
            self._engine.dispose()
            raise

    def _refuse_foreign(self, sqlite_file: bool) -> None:
        """Someone else's database gets no table of ours; a SQLite file is looked at read-only
        first (the writer's connection would switch it to WAL: a change)."""
        if not sqlite_file:
            self._read(lambda c: refuse_foreign(c, self.location), "cannot open")
            return
        if not Path(str(self.url.database)).exists():
            return
        looker = create_engine(self.url, readonly=True)
        try:
            with looker.connect() as connection, connection.begin():
                refuse_foreign(connection, self.location)
        finally:
            looker.dispose()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close the database's connections (the object is unusable afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def store(
        self,
        batch: Sequence[Received],
        *,
        gaps: Mapping[str, SourceGaps] | None = None,
        recorder: str = "",
        refused: Mapping[tuple[str, str], int] | None = None,
        vouched: Mapping[str, tuple[str, str]] | None = None,
        claims: Mapping[tuple[str, str], int] | None = None,
        displaced: Mapping[str, int] | None = None,
    ) -> Stored:
        """Write ``batch`` in one transaction; what was new, already known, or rejected.

        A message already stored (by this or any other writer) is not stored
        again, and a run's row only moves forward, whatever order copies
        arrive in. ``gaps``: per source, the events ``recorder`` found missing
        since its last write (a change: negative when late copies filled
        holes) and when it first found one, added in the same transaction to
        what :meth:`gaps` reads. ``refused``: per (run id, reason), messages about the run
        that ``recorder`` refused (stored nowhere), added to :attr:`RunSummary.refused`.
        ``vouched``: per run id, a source and what vouches for it as the run's engine
        (``start``, ``topic``, ``online``): it takes over a run stored from a source nothing
        vouched for (what that one said is set aside, counted in :attr:`RunDetail.claims`).
        ``claims``: per (run id, source), messages refused as another source's than the
        run's. ``displaced``: per run id, the one event number its recorder's count rested on
        until a number far below it came (a forger's ``seq`` heard first): what the history
        holds of the run is set aside, that event is refused (``seq out of bounds``), and the
        run is stored anew from the batch. An event of a run from another source than the one
        stored for it is refused here too (:attr:`Stored.refused`). Raises
        :class:`HistoryError` when the database cannot be written now: nothing was stored,
        and it may all be given again.
        """
        self._writable()
        now = time.time()
        rows = gap_rows(gaps, recorder, now) if gaps else None
        refusals = refusal_rows(refused, now) if refused else None
        claimed = claim_rows(claims, now) if claims else None
        return store_batch(self._engine, batch, rows, refusals, vouched, claimed, displaced)

    def prune(self, before: float, *, batch: int = 500) -> int:
        """Delete up to ``batch`` runs last received before ``before`` (epoch seconds: when the
        recorder received their latest message, not what the messages say), with their events,
        refusals and task logs, and the presence, constraint events, cancels and refusals
        received before then (and the logs of runs known only by logs last received before
        then), and the dashboards' access rows from before then; how many rows went. Small
        batches, each its own transaction, so a writer never waits long (a run's log lines go
        :data:`LINES_A_PRUNE` at a time before the run): call it again while it returns more
        than zero."""
        return self._write(lambda c: prune_runs(c, before, batch), "cannot prune the history")

    def prune_logs(self, before: float, *, batch: int = LINES_A_PRUNE) -> int:
        """Delete up to ``batch`` task log lines received before ``before`` (epoch seconds: when
        the recorder received them, not when they say they were logged), and the records of
        their batches; how many rows went. Each task's counts (:meth:`log_counts`) stay
        with its run. Call it again while it returns more than zero."""
        return self._write(
            lambda c: prune_log_lines(c, before, batch), "cannot prune the history's logs"
        )

    # -- reading -----------------------------------------------------------------------------

    def runs(self, *, limit: int = 100, **filters: Unpack[RunFilters]) -> list[RunSummary]:
        """Runs newest first (by start), at most ``limit``, those ``filters`` pick (see
        :class:`~cascade.history.RunFilters`: ``since``, ``status``, ``project``, ``task``,
        ``source``, ``name``, ``schedule``, ``trigger``, ``among``)."""
        after = _checked(filters)
        return self._read(lambda c: runs_query(c, filters, after, limit))

    def count_runs(self, **filters: Unpack[RunFilters]) -> int:
        """How many runs :meth:`runs` would list with these filters and no limit: what a
        page of them leaves out."""
        after = _checked(filters)
        return self._read(lambda c: count_runs_query(c, filters, after))

    def lineage(
        self,
        run_id: str,
        *,
        limit: int = 100,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[RunSummary]:
        """The runs of the line ``run_id`` (its whole id) belongs to: the first run and every
        rerun of it (each :class:`RunSummary` says which it reruns and which rerun it),
        oldest first, at most ``limit``; ``[]`` for an unknown run (``among``: as
        :meth:`runs`)."""
        return self._read(lambda c: lineage_query(c, run_id, limit, among))

    def graph(
        self, run_id: str, *, among: Iterable[tuple[str, str | None]] | None = None
    ) -> RecordedGraph | None:
        """The graph of tasks the run ``run_id`` (its whole id) started with, as its engine
        sent it (:class:`RecordedGraph`: its nodes, or only their count above the graph's
        bound); ``None`` for an unknown run, one of its engines before graphs, or (``among``: as
        :meth:`runs`) another's."""
        seen = None if among is None else list(among)
        return self._read(lambda c: graph_query(c, run_id, seen))

    def reused(self, run_id: str) -> dict[str, int]:
        """Of the run ``run_id`` (its whole id), per run its reused results came from, how
        many of its tasks took a stored result of that run instead of running (``{}``: none,
        or an unknown run)."""
        return self._read(lambda c: reused_query(c, run_id))

    def run(
        self,
        run_id: str,
        *,
        after: str | None = None,
        limit: int | None = None,
        counts: bool = True,
        states: Collection[str] | None = None,
        name_glob: str | None = None,
        among: Iterable[tuple[str, str | None]] | None = None,
        items: bool = True,
        item_of: str | None = None,
    ) -> RunDetail | None:
        """One run and its tasks with their states, times, attempts and error; ``None`` if
        unknown. A prefix of a run id that only one run has finds it (``ValueError`` if
        several have it). ``among``: of these orgs' and projects' runs only (as
        :meth:`runs`): another's is unknown, found by the same query at the same cost.

        Every task without ``limit``; with it, a page of at most ``limit`` tasks (by task id,
        those after ``after``) and :attr:`RunDetail.next_after`, the next page's cursor.
        ``counts=False`` leaves the run's task counts and missing events out (``tasks``
        empty, ``missing_events`` ``None``): they are the run's whole cost, which a next
        page need not pay again (:meth:`run_pages` walks them all so).

        ``states`` (``FAILED``, any case) and ``name_glob`` (``load_*``: ``fnmatch``'s ``*``,
        ``?`` and ``[...]``, case-sensitive) list only the tasks whose last state is one of
        ``states`` and whose name matches: in SQL, so a page holds ``limit`` of them while
        there are more, read without the others (the counts are still the whole run's).

        ``items=False`` leaves maps' items out (``transform-7[3]``: a task id ending in
        ``[<digits>]``), as a view that folds each map into its own task's row lists a run
        (:attr:`RunReport.maps <cascade.history.RunReport.maps>` counts them), and loops'
        iterations (``counter-4@7``: ``<loop>@<digits>`` whose ``<loop>`` is a task of the
        run; :attr:`RunReport.loops <cascade.history.RunReport.loops>` counts them);
        ``item_of`` lists only the items of the map, or the iterations of the loop, whose task
        id it is (its row opened)."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        return self._read(
            lambda c: run_query(
                c,
                run_id,
                after=after,
                limit=limit,
                counts=counts,
                states=states,
                name_glob=name_glob,
                among=among,
                items=items,
                item_of=item_of,
            )
        )

    def maps(self, run_id: str) -> list[MapItems]:
        """The maps of the run ``run_id`` (its whole id; ``[]`` for an unknown run), by task
        id, each with its items counted by their last state, in one ``GROUP BY`` (what
        :attr:`RunReport.maps <cascade.history.RunReport.maps>` holds)."""
        return self._read(lambda c: map_items_query(c, run_id))

    def loops(self, run_id: str) -> list[LoopIterations]:
        """The loops (``cs.Jump``) of the run ``run_id`` (its whole id; ``[]`` for an unknown
        run), by task id, each with its iterations counted by their last state and its latest
        one, in one ``GROUP BY`` (what :attr:`RunReport.loops
        <cascade.history.RunReport.loops>` holds)."""
        return self._read(lambda c: loop_iterations_query(c, run_id))

    def report(
        self,
        run_id: str,
        *,
        limit: int | None = None,
        states: Collection[str] | None = None,
        name_glob: str | None = None,
        among: Iterable[tuple[str, str | None]] | None = None,
        items: bool = False,
        item_of: str | None = None,
    ) -> RunReport | None:
        """What the run ``run_id`` came to (:class:`RunReport`), read in one transaction: the
        run and its counts with the first page of its tasks (as :meth:`run` reads it with
        ``limit``, ``states``, ``name_glob`` and ``among``), its slowest finished tasks, its
        first failures, its tasks held for a decision, how many tasks the filters pick, the
        decisions on its holds, the results it reused and what its tasks logged. ``None`` if
        unknown; ``ValueError`` for a prefix several runs' ids start with. Each part is a
        query of its own, whatever the run's size (`cascade run` renders it).

        Its maps (``task.map(...)``) are counted in :attr:`RunReport.maps`: without ``states``
        nor ``name_glob``, each map's own task stands for its items in the first page and in
        ``matched`` (:attr:`RunReport.folded` says how many it left out), unless ``items``
        (the page lists them as :meth:`run` does); a filter picks items as any task.
        ``item_of``: the first page and ``matched`` are the items of the map whose task id it
        is (its row expanded), those ``states`` and ``name_glob`` pick. Its loops
        (``cs.Jump``) fold alike: :attr:`RunReport.loops` counts each loop's iterations, its
        own task stands for them (:attr:`RunReport.folded_iterations`), and ``item_of`` a
        loop's task id lists its iterations."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        return self._read(
            lambda c: report_query(
                c,
                run_id,
                limit=limit,
                states=states,
                name_glob=name_glob,
                among=among,
                items=items,
                item_of=item_of,
            )
        )

    def run_pages(self, run_id: str, *, size: int = TASKS_PAGE) -> Iterator[RunDetail]:
        """The run ``run_id`` names, page after page of at most ``size`` tasks, each read in a
        transaction of its own (a run still being recorded may gain tasks meanwhile): its
        tasks without ever holding them all. Every page carries the run as the first page
        read it, counts included. Nothing for an unknown run."""
        page = self.run(run_id, limit=size)
        if page is None:
            return
        first = page.run
        yield page
        while page.next_after is not None:
            following = self.run(first.run_id, after=page.next_after, limit=size, counts=False)
            if following is None:  # pruned meanwhile
                return
            page = dataclasses.replace(following, run=first)
            yield page

    def count_tasks(
        self,
        run_id: str,
        *,
        states: Collection[str] | None = None,
        name_glob: str | None = None,
    ) -> int:
        """How many tasks of the run ``run_id`` (its whole id) :meth:`run` lists with these
        ``states`` and ``name_glob`` (every task without them; 0 for an unknown run)."""
        return self._read(lambda c: count_query(c, run_id, states=states, name_glob=name_glob))

    def run_tasks(
        self,
        run_id: str,
        *,
        order: TaskOrder,
        limit: int = 5,
        states: Collection[str] | None = None,
        name_glob: str | None = None,
    ) -> list[TaskHistory]:
        """At most ``limit`` tasks of the run ``run_id`` (its whole id; ``[]`` for an unknown
        run) that ``states`` and ``name_glob`` pick (as :meth:`run` says), as a page of it has
        them: the ``longest`` first (by their last event's ``duration_ms``), or the
        ``earliest`` to reach their last state first. What a run's summary shows (its slowest
        tasks, its first failures), read in SQL whatever the run's size."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if order not in ("longest", "earliest"):
            raise ValueError(f"order must be 'longest' or 'earliest', not {order!r}")
        return self._read(
            lambda c: ranked_query(
                c, run_id, order=order, limit=limit, states=states, name_glob=name_glob
            )
        )

    def run_ids(
        self,
        prefix: str,
        *,
        limit: int = 100,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[str]:
        """The ids of the recorded runs that start with ``prefix`` (all of them for ``""``),
        in order, at most ``limit``: what a prefix of a run id could name (of ``among``'s
        runs only, when given, as :meth:`runs`)."""
        return self._read(lambda c: run_ids_query(c, prefix, limit, among))

    def tasks(
        self, *, since: Since = None, name_glob: str | None = None, exact: bool | None = None
    ) -> list[TaskStats]:
        """Per task name (those matching ``name_glob``, case-sensitive), its executions that
        finished since ``since``: runs, failures, failure rate, p50/p95/max duration.

        ``exact=True`` computes them from every execution; ``False`` reads the hourly rollup
        kept at ingest (``TaskStats.approximate``: percentiles within 2.5 %, from the hour
        ``since`` falls in), in milliseconds whatever the history's size. By default, exact
        up to 10,000 finished executions in the period (``EXACT_UP_TO``), the rollup beyond.
        """
        after = since_epoch(since)

        def query(connection: sa.Connection) -> list[TaskStats]:
            precise = exact
            if precise is None:
                precise = exact_enough(connection, after)
            if precise:
                return tasks_query(connection, since=after, name_glob=name_glob)
            like = glob_to_like(name_glob) if name_glob is not None else None
            return rollup_stats(connection, since=after, name_glob=name_glob, like=like)

        return self._read(query)

    def executions(self, name: str, *, since: Since = None, limit: int = 1000) -> list[Execution]:
        """The last ``limit`` finished executions of the tasks named ``name`` (exactly) since
        ``since``, oldest first: a task's duration over time."""
        after = since_epoch(since)
        return self._read(lambda c: executions_query(c, name=name, since=after, limit=limit))

    def audit(self, *, since: Since = None, limit: int = 1000) -> list[AuditEvent]:
        """Constraints set, cleared and expired, runs cancelled, decisions on held tasks
        (``decided``: applied or refused, as their engines answered), runs a start request
        started (``start``: who, why, when, the workflow and its params, as the run's engine
        said), the refusals of a team's dashboard (``refused``) and the webhooks `cascade
        notify` posted (``notified``) since ``since``, newest first, at most ``limit``; each
        set, clear and cancel says what vouched for its ``issued_by``
        (:attr:`AuditEvent.vouched`)."""
        after = since_epoch(since)
        now = time.time()
        return self._read(lambda c: audit_query(c, since=after, limit=limit, now=now))

    def decisions(self, run_id: str, *, limit: int = 1000) -> list[DecisionRecord]:
        """The engines' answers to decisions on ``run_id``'s held tasks, applied or refused, in
        the order received, at most ``limit`` (:class:`DecisionRecord`: who asked, why, on
        which attempt, and what came of it)."""
        return self._read(lambda c: run_decisions(c, run_id, limit))

    def gaps(self, *, since: Since = None, source: str | None = None) -> list[SourceGap]:
        """What each recorder found missing of each source's events (:class:`SourceGap`),
        those whose count changed since ``since``, latest change first; ``source``: that
        source only. Sources with nothing missing in the end are left out."""
        after = since_epoch(since)
        return self._read(lambda c: gaps_query(c, since=after, source=source))

    def note_recorder(self, note: RecorderNote) -> None:
        """Keep ``note`` as its recorder's latest word on itself (a :class:`Recorder` notes
        every few seconds as it records); :class:`HistoryError` if it cannot be written."""
        self._write(lambda c: note_recorder(c, note), "cannot note the recorder")

    def recorders(self, *, since: Since = None) -> list[RecorderNote]:
        """What each recorder last said of itself (:class:`RecorderNote`: whether it keeps up
        with the broker), the latest first; ``since``: those that noted since then (a recorder
        notes every few seconds while it runs)."""
        after = since_epoch(since)
        return self._read(lambda c: recorder_notes_query(c, after))

    # -- the tasks' log lines ----------------------------------------------------------------

    def log_lines(
        self,
        run_id: str,
        *,
        task: str | None = None,
        level: int = 0,
        since: float | None = None,
        after: int = 0,
        limit: int | None = 1000,
        last: bool = False,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[RecordedLogLine]:
        """The lines the tasks of the run ``run_id`` (its whole id) logged, in the order they
        were logged (by time, then ``n``), at most ``limit`` (``None``: all); ``[]`` for a run
        without any. ``last``: the newest ``limit`` of them (still oldest first), read
        without going through the others: a long run's tail.

        ``task``: a task id, or a task name, or a shell glob of names (``load_*``, as
        :meth:`run`'s ``name_glob``). ``level``: that level's number or higher
        (``logging.WARNING``: warnings, errors). ``since``: lines logged since then (epoch
        seconds, as the engine said). ``after``: the :attr:`~RecordedLogLine.id` of the
        last line the caller has: the lines stored after it, to page through a run's lines
        or follow them while it is recorded (ids number lines in the order stored: a run's
        batches as received, each batch's lines in the order logged; a batch that arrived
        late is found after the lines stored before it). ``among``: none unless the run is
        recorded and one of these orgs' and projects' (as :meth:`runs`), in the same query.
        """
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        return self._read(
            lambda c: log_lines_query(
                c,
                run_id,
                task=task,
                level=level,
                since=since,
                after=after,
                limit=limit,
                last=last,
                among=among,
            )
        )

    def log_counts(self, run_id: str) -> dict[str, LogCount]:
        """Per task id, what the tasks of the run ``run_id`` logged: the lines stored and those
        their engine dropped (:class:`LogCount`); empty for a run without logs."""
        return self._read(lambda c: log_counts_query(c, run_id))

    def log_batches(self, run_id: str) -> LogBatches | None:
        """How the history holds the run ``run_id``'s log batches as its engine numbered them
        (:class:`LogBatches`: the batches ``missing``, whichever tasks' lines they held);
        ``None`` for a run without logs."""
        return self._read(lambda c: log_batches_query(c, run_id))

    def runs_logging(
        self,
        text: str,
        *,
        since: float | None = None,
        limit: int = 100,
        among: Iterable[tuple[str, str | None]] | None = None,
    ) -> list[str]:
        """The ids of the runs a line of which contains ``text`` (any case: ASCII letters on
        SQLite, all on PostgreSQL), the run with the latest such line first, at most
        ``limit``. ``since``: lines received since then (epoch seconds). It reads every line
        (of the period) whose text it looks through: no index finds a substring. ``among``:
        of these orgs' and projects' recorded runs only (as :meth:`runs`)."""
        if not text:
            raise ValueError("text must not be empty")
        return self._read(
            lambda c: runs_logging_query(c, text, since=since, limit=limit, among=among)
        )

    # -- `cascade notify`: which notifier posts an event, and what was posted -----------------

    def claim_post(
        self, group: str, key: str, owner: str, *, lease: float, now: float | None = None
    ) -> PostClaim:
        """Claim the event ``key`` for ``owner``, one of the notifiers of ``group``: won when
        no notifier of the group claimed it before, or when the claim found was not marked
        posted within ``lease`` seconds (taken over); else who holds it and whether it was
        posted. One statement the database orders: two notifiers never both win."""
        at = time.time() if now is None else now
        return self._write(
            lambda c: claim_post(c, group, key, owner, lease=lease, now=at),
            "cannot claim an event",
        )

    def end_post(
        self, group: str, key: str, owner: str, *, outcome: str, now: float | None = None
    ) -> bool:
        """Mark ``owner``'s claim on ``key`` done (``outcome``: ``posted``, ``failed``, ...);
        ``False`` when it was no longer ``owner``'s (taken over after its lease)."""
        at = time.time() if now is None else now
        return self._write(
            lambda c: end_post(c, group, key, owner, outcome=outcome, now=at),
            "cannot mark an event posted",
        )

    def prune_post_claims(self, before: float) -> int:
        """Forget the claims on events made before ``before`` (epoch seconds); how many."""
        return self._write(lambda c: prune_post_claims(c, before), "cannot prune claims")

    def record_post(self, post: NotifyPost) -> None:
        """Keep ``post`` in the audit (:meth:`audit`'s ``notified`` events)."""
        self._write(lambda c: insert_post(c, post), "cannot audit a post")

    def add_webhook(
        self,
        url: str,
        *,
        fmt: str,
        events: Iterable[str],
        filters: Iterable[str] = (),
        created_by: str,
    ) -> NotifyWebhook:
        """Keep a webhook a dashboard's admin added (``url`` a secret: only
        :attr:`NotifyWebhook.url` gives it back); it, with its id."""
        return self._write(
            lambda c: insert_webhook(
                c,
                url,
                fmt=fmt,
                events=tuple(events),
                filters=tuple(filters),
                created_by=created_by,
            ),
            "cannot keep a webhook",
        )

    def webhooks(self) -> list[NotifyWebhook]:
        """The webhooks the dashboards' admins added, the first added first."""
        return self._read(list_webhooks)

    def remove_webhook(self, webhook_id: int) -> NotifyWebhook | None:
        """Forget the webhook ``webhook_id``; it, or ``None`` when there was none."""
        return self._write(lambda c: delete_webhook(c, webhook_id), "cannot remove a webhook")

    # -- a team's dashboard: sign-in sessions, the access audit, API tokens -------------------

    def add_session(self, session: DashboardSession) -> None:
        """Keep ``session`` (a new sign-in), and forget those expired a day ago or more."""
        self._write(lambda c: insert_session(c, session), "cannot keep a sign-in session")

    def sessions(self, *, since_expiry: float | None = None) -> list[DashboardSession]:
        """The sessions kept, the newest first: those expiring after ``since_expiry`` (all
        kept, for ``None``), ended ones too."""
        return self._read(lambda c: list_sessions(c, since_expiry))

    def revoke_sessions(
        self, *, by: str, at: float, handle: str | None = None, who: str | None = None
    ) -> list[DashboardSession]:
        """End the live session ``handle``, or every live one of ``who`` (one of them must be
        given), as ``by`` at ``at``; the sessions it ended."""
        if (handle is None) == (who is None):
            raise ValueError("give a session's handle or a person's name")
        return self._write(
            lambda c: revoke_sessions(c, by=by, at=at, handle=handle, who=who),
            "cannot revoke a sign-in session",
        )

    def record_access(
        self,
        *,
        who: str,
        via: str,
        action: str,
        target: str,
        outcome: str,
        reason: str | None = None,
        at: float | None = None,
        claim: str | None = None,
        count: int = 1,
        last_at: float | None = None,
    ) -> int:
        """Add a row to the access audit: a team's dashboard let ``who`` (named by ``via``:
        ``oidc``, ``proxy``, ``api-token``, ``token``; by the ID token's ``claim`` for ``oidc``)
        do ``action`` on ``target`` (``outcome`` ``allowed``), or refused it (``refused``, with
        its ``reason``), at ``at`` (now by default); ``count`` alike, the last at ``last_at``
        (:meth:`count_access` adds more). :meth:`audit` lists the refusals and vouches with the
        rest (see :attr:`AuditEvent.vouched`). The row's id; ``ValueError`` for a ``via`` or
        ``outcome`` it does not know; :class:`HistoryError` when the database cannot be
        written."""
        self._writable()
        row = access_row(
            at=time.time() if at is None else at,
            who=who,
            via=via,
            action=action,
            target=target,
            outcome=outcome,
            reason=reason,
            claim=claim,
            count=count,
            last_at=last_at,
        )
        return self._write(
            lambda c: insert_access(c, row), f"cannot write the access audit to {self.location}"
        )

    def count_access(self, row_id: int, count: int, last_at: float) -> None:
        """Access row ``row_id`` (of :meth:`record_access`) now stands for ``count`` alike, the
        last at ``last_at``."""
        self._writable()
        self._write(
            lambda c: count_access(c, row_id, count, last_at),
            f"cannot write the access audit to {self.location}",
        )

    def create_token(
        self,
        holder: str,
        *,
        created_by: str,
        note: str | None = None,
        expires_at: float | None = None,
    ) -> NewToken:
        """Make an API token for ``holder`` (a person as the roles file names them: the token
        carries their roles, whatever they are when it is used). The returned
        :attr:`NewToken.secret` is the only copy there is: the history keeps its SHA-256.
        ``expires_at``: epoch seconds (``None``: until revoked). ``ValueError`` for an empty
        or unprintable name, or an expiry in the past."""
        self._writable()
        now = time.time()
        return self._write(
            lambda c: insert_token(
                c, holder, created_by=created_by, note=note, expires_at=expires_at, now=now
            ),
            f"cannot make a token in {self.location}",
        )

    def tokens(self, *, holder: str | None = None) -> list[ApiToken]:
        """The API tokens (of ``holder``), the newest first, revoked and expired ones too;
        never a secret nor its hash."""
        return self._read(lambda c: list_tokens(c, holder=holder))

    def find_token(self, secret: str) -> ApiToken | None:
        """The token whose secret ``secret`` is (check :meth:`ApiToken.state`: a revoked or
        expired one is found too), ``None`` when no token's is."""
        return self._read(lambda c: find_token(c, secret))

    def token_used(self, token_id: int, at: float | None = None) -> None:
        """Note that token ``token_id`` was used (its ``last_used_at``)."""
        when = time.time() if at is None else at
        self._write(
            lambda c: token_used(c, token_id, when), f"cannot note a token's use in {self.location}"
        )

    def revoke_token(self, token_id: int) -> ApiToken | None:
        """Revoke token ``token_id`` now (one revoked already keeps its time); the token as
        revoked, ``None`` when there is no such token. A dashboard stops accepting it within
        its cache's few seconds."""
        now = time.time()
        return self._write(
            lambda c: revoke_token(c, token_id, now),
            f"cannot revoke a token in {self.location}",
        )

    # -- reading and writing in one transaction ----------------------------------------------

    def _read(self, query: Callable[[sa.Connection], _T], what: str = "cannot read") -> _T:
        try:
            with self._engine.connect() as connection, connection.begin():
                return query(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise from_database_error(f"{what} {self.location}", exc) from None

    def _writable(self) -> None:
        if self.mode != "write":
            raise HistoryError(f"{self.location} is open read-only: open it with mode='write'")

    def _write(self, job: Callable[[sa.Connection], _T], what: str) -> _T:
        self._writable()
        try:
            with (
                self._engine.connect() as connection,
                connection.execution_options(**WRITE).begin(),
            ):
                return job(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise from_database_error(what, exc) from None


def _checked(filters: RunFilters) -> float | None:
    """``filters``' ``since`` as epoch seconds, its ``status`` checked first (``ValueError``)."""
    status = filters.get("status")
    if status is not None:
        status_name(status)
    return since_epoch(filters.get("since"))
