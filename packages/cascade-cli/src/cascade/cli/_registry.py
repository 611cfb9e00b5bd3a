"""Every `cascade` command: its name and where it is built, in the order `cascade --help` lists
them. A command's module is imported only when the command is added to an app: `cascade status`
builds an app of one command, `cascade --help` every one (:mod:`._app`)."""

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
    :class:`~.plumbing._exits.EndsOnErrors` (a group's commands are declared so)."""

    name: str
    module: str
    attribute: str = ""
    group: bool = False
    broker_options: bool = False

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


def _each(module: str, *names: str) -> tuple[Command, ...]:
    return tuple(Command(name, module) for name in names)


COMMANDS: tuple[Command, ...] = (
    *_each("commands.status", "status"),
    *_each("commands.steer", "pause", "limit", "resume"),
    *_each("commands.cancel", "cancel"),
    *_each("commands.watch", "watch"),
    *_each("commands.logs", "logs"),
    *_each("commands.why", "why"),
    *_each("commands.demo", "demo"),
    # held tasks, and the decisions on them
    *_each("commands.held", "held"),
    *_each("commands.decide", "retry", "skip", "complete", "fail"),
    # served workflows: who serves what, and starting or rerunning one
    *_each("commands.served", "served"),
    *_each("commands.start", "start"),
    *_each("commands.rerun", "rerun"),
    # schedules of served workflows: listed, and their slots started on purpose
    *_each("commands.schedules", "schedules", "backfill"),
    # its web stack is an optional extra, imported when it runs
    Command("dashboard", "commands.dashboard", broker_options=True),
    *_each("commands.forget", "forget"),
    # the broker's ACL from the roles file the dashboard signs people in with
    *_each("commands.acl", "acl"),
    # the history (the [history] extra, imported when they run): recording, reading it back
    *_each("commands.record", "record"),
    *_each("commands.runs", "runs"),
    *_each("commands.run", "run"),
    *_each("commands.tasks", "tasks"),
    *_each("commands.audit", "audit"),
    # webhooks when runs fail, tasks are held, engines are lost (the [notify] extra)
    *_each("commands.notify", "notify"),
    # its schema, seen and migrated on purpose (readers never migrate it)
    Command("history", "commands.history", "history_app", group=True),
    # per-person API tokens for a team's dashboard, kept in the history; sign-in sessions
    Command("token", "commands.token", "token_app", group=True),
    Command("session", "commands.session", "session_app", group=True),
)
"""The commands, in the order `cascade --help` lists them."""
