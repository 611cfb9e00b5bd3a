"""Every `cascade` command: its name, its summary and where it is built, in the order `cascade
--help` lists them. A command's module is imported only when the command is added to an app:
`cascade status` builds an app of one command; `cascade --help` lists every one by its summary
and imports none (:mod:`._main`); :mod:`._app` builds the app of every one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import typer

from .plumbing._exits import EndsOnErrors

__all__ = ["COMMANDS", "Command"]


@dataclass(frozen=True)
class Command:
    """One command (or, with ``group``, a group of commands) and where it is built:
    ``attribute`` of ``module`` (under ``cascade.cli``); ``broker_options``: taking the broker's
    options is added here, not where the command is written. A command is added as an
    :class:`~.plumbing._exits.EndsOnErrors` (a group's commands are declared so).

    ``summary``: the first paragraph of its help, which `cascade --help` lists without
    importing the command (``tests/test_one_command_app.py`` holds it to the command's own)."""

    name: str
    module: str
    attribute: str = ""
    group: bool = False
    broker_options: bool = False
    summary: str = ""

    def add_to(self, app: typer.Typer) -> None:
        """Import the command and add it to ``app``."""
        built = getattr(
            importlib.import_module(f"cascade.cli.{self.module}"), self.attribute or self.name
        )
        if self.group:
            app.add_typer(built)
            return
        if self.broker_options:
            from .plumbing._broker import broker_options

            built = broker_options(built)
        app.command(name=self.name, cls=EndsOnErrors)(built)


COMMANDS: tuple[Command, ...] = (
    Command(
        "status", "commands.status", summary="Engines online/offline and the constraints in force."
    ),
    Command(
        "pause",
        "commands.steer",
        summary="Pause the tasks in SCOPE until resumed (running ones finish).",
    ),
    Command(
        "limit", "commands.steer", summary="Limit how many tasks of SCOPE run at once, or how fast."
    ),
    Command(
        "resume",
        "commands.steer",
        summary="Clear the constraints on SCOPE (all of them, or only --type).",
    ),
    Command(
        "cancel",
        "commands.cancel",
        summary="Cancel a run: its engine stops it and says what it stopped.",
    ),
    Command(
        "watch",
        "commands.watch",
        summary="A live view of runs, their tasks, engines and constraints.",
    ),
    Command(
        "logs", "commands.logs", summary="What a run's tasks logged: recorded, or live with -f."
    ),
    Command(
        "why",
        "commands.why",
        summary="Why a run's tasks wait: each blocked task and what holds it.",
    ),
    Command("demo", "commands.demo", summary="Run a sample workflow and watch it live."),
    # held tasks, and the decisions on them
    Command("held", "commands.held", summary="The tasks held for a decision, fleet-wide."),
    Command("retry", "commands.decide", summary="Retry a held task: one more attempt."),
    Command(
        "skip", "commands.decide", summary="Skip a held task: it and its dependents end skipped."
    ),
    Command(
        "complete",
        "commands.decide",
        summary="Complete a held task with a result (JSON), or approve a gate.",
    ),
    Command(
        "fail",
        "commands.decide",
        summary="Fail a held task (or reject a gate): its dependents are skipped.",
    ),
    # served workflows: who serves what, and starting or rerunning one
    Command(
        "served",
        "commands.served",
        summary="Who serves which workflows, with their params and load.",
    ),
    Command(
        "start",
        "commands.start",
        summary="Start a served workflow: a process serving it starts a run.",
    ),
    Command(
        "rerun",
        "commands.rerun",
        summary="Rerun a served workflow's run, reusing results that match.",
    ),
    Command(
        "serve",
        "commands.serve",
        summary="Serve a file's workflows on the broker until stopped.",
    ),
    # schedules of served workflows: listed, and their slots started on purpose
    Command(
        "schedules",
        "commands.schedules",
        summary="The served schedules: next and last slot, its run, paused or not.",
    ),
    Command(
        "backfill",
        "commands.schedules",
        summary="Start a schedule's past slots, each once, at most 100.",
    ),
    # its web stack is an optional extra, imported when it runs
    Command(
        "dashboard",
        "commands.dashboard",
        broker_options=True,
        summary="A live web page of the runs, with pause/resume/limit.",
    ),
    Command(
        "forget",
        "commands.forget",
        summary="Clear one engine's retained status, or old offline ones'.",
    ),
    # the broker's ACL from the roles file the dashboard signs people in with
    Command("acl", "commands.acl", summary="Write the broker's ACL from a roles file."),
    # the history (the [history] extra, imported when they run): recording, reading it back
    Command(
        "record",
        "commands.record",
        summary="Record runs, tasks, engines and constraints into the history.",
    ),
    Command("runs", "commands.runs", summary="Recorded runs, newest first."),
    Command("run", "commands.run", summary="One recorded run: its summary, then its tasks."),
    Command(
        "tasks",
        "commands.tasks",
        summary="Per task name: runs, executions, failures and durations.",
    ),
    Command(
        "audit",
        "commands.audit",
        summary="Constraints, starts, cancels, decisions, posts, newest first.",
    ),
    # webhooks when runs fail, tasks are held, engines are lost (the [notify] extra)
    Command(
        "notify",
        "commands.notify",
        summary="Post webhooks when runs fail, tasks are held, engines are lost.",
    ),
    # its schema, seen and migrated on purpose (readers never migrate it)
    Command(
        "history",
        "commands.history",
        "history_app",
        group=True,
        summary="The history database's schema: its status, migrating it.",
    ),
    # per-person API tokens for a team's dashboard, kept in the history; sign-in sessions
    Command(
        "token",
        "commands.token",
        "token_app",
        group=True,
        summary="Per-person API tokens for a team's dashboard, in the history.",
    ),
    Command(
        "session",
        "commands.session",
        "session_app",
        group=True,
        summary="A team's dashboard sign-in sessions: list them, end them.",
    ),
)
"""The commands, in the order `cascade --help` lists them."""
