"""`cascade watch --run RUN` of a run that is not live: what the history has of it (its end,
its final state, as `cascade run RUN` shows it), else where it was waited for."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from cascade.control.run_ids import short_id
from cascade.interfaces.summaries import SummaryRun
from cascade.reader import SHOWN, ReaderModel, inert, parse_timestamp

from ...plumbing._context import CliContext, fail
from ...plumbing._history_db import default_history, open_history, query
from ...rendering._times import TimeFormat
from ..run import show_recorded_run

if TYPE_CHECKING:
    from cascade.history import History, RunSummary

__all__ = ["recorded_run_of", "show_not_live", "summarised"]


def summarised(state: ReaderModel, run_id: str) -> tuple[str, SummaryRun] | None:
    """The engine whose retained summary lists ``run_id``, and how it lists it (the latest
    of several); ``None`` when none does."""
    found = [
        (engine.summary_at, source, run)
        for source, engine in state.engines.items()
        if engine.summary is not None
        for run in engine.summary.listed
        if run.run_id == run_id
    ]
    if not found:
        return None
    _, source, run = max(found, key=lambda item: item[0])
    return source, run


def _as_summarised(summary: tuple[str, SummaryRun] | None) -> str:
    """How the engine's summary has the run, said after what was waited for."""
    if summary is None:
        return ""
    source, run = summary
    engine = inert(source, SHOWN["source"])
    if run.ended is None:
        return f"; the last summary of its engine {engine} lists it as {run.status}"
    stamp = parse_timestamp(run.ended)
    ended = TimeFormat(time.time()).at(stamp) if stamp is not None else "?"
    return f"; its engine {engine} says in its summary that it ended at {ended} ({run.status})"


def recorded_run_of(db: str | None, run_id: str) -> tuple[History, RunSummary] | None:
    """The history (``--db``'s, else the default one if it exists; open: the caller closes
    it) and its summary of ``run_id``; ``None`` when there is no history or it lacks the run."""
    if db is None:
        default = default_history()
        if default is None or not default.exists:
            return None
    history = open_history("watch", db)
    try:
        detail = query(lambda: history.run(run_id, limit=1, counts=False))
    except BaseException:
        history.close()
        raise
    if detail is None or detail.run.run_id != run_id:
        history.close()
        return None
    return history, detail.run


def show_not_live(
    context: CliContext,
    recorded: tuple[History, RunSummary] | None,
    run_id: str,
    *,
    heard_on: str | None,
    waited: float,
    json_output: bool,
    summary: tuple[str, SummaryRun] | None = None,
) -> None:
    """Say that run ``run_id`` is not live and show what the history ``recorded`` of it (as
    `cascade run` does; with ``json_output``, where to read it); without it, exit 1 saying
    what was waited for. ``heard_on``: the broker listened to for ``waited`` seconds
    (``None``: the history has the run as ended, the broker was not asked); ``summary``:
    the engine whose summary lists the run, and how (:func:`summarised`): an end it says
    answers without a history."""
    shown = short_id(run_id)
    listened = f"nothing heard of it on {heard_on} within {waited:g} s" if heard_on else ""
    said = _as_summarised(summary)
    if recorded is None and summary is not None and summary[1].ended is not None:
        typer.echo(
            f"cascade: run {shown} is not live: {listened}{said}; no history has it "
            "(`cascade record` keeps one, --db names it) to show its tasks",
            err=True,
        )
        return
    if recorded is None:
        raise fail(
            f"run {run_id} is not live: {listened} (a live run's engine says so every 5 s)"
            f"{said}; it has ended, runs on another broker, or its engine is not connected. "
            "With no history that has it (`cascade record` keeps one; --db names it), its end "
            "cannot be shown"
        )
    history, run = recorded
    if run.ended_at is not None:
        ended = TimeFormat(time.time()).at(run.ended_at)
        state = f"it ended at {ended} ({run.status})"
    elif run.status == "Lost":
        at = f" at {TimeFormat(time.time()).at(run.lost_at)}" if run.lost_at is not None else ""
        engine = inert(run.source, SHOWN["source"])
        state = f"it was lost{at} when its engine {engine} went offline (Lost)"
    else:
        state = f"the history has it as {run.status}, its end not recorded"
    where = f"{listened}; {state}" if listened else state
    if json_output:
        typer.echo(
            f"cascade: run {shown} is not live: {where}; its final state: "
            f"cascade run {shown} --json",
            err=True,
        )
        return
    typer.echo(
        f"cascade: run {shown} is not live: {where}; its final state, from the history:",
        err=True,
    )
    show_recorded_run(context, history, run_id)
