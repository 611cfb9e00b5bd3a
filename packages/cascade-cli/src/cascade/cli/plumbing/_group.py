"""The `cascade` command group: every usage error as one line on stderr, exit 2; each help
text's paragraphs flowed to the terminal's width."""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["OneLineErrors", "flowed"]

# The click that typer runs on: click itself, or (typer 0.24+) the copy typer ships.
_click_errors = sys.modules[typer.BadParameter.__module__]
_ClickException: type[Exception] = _click_errors.ClickException
_Abort: type[BaseException] = typer.Abort
# `cascade` alone (click 8.2+): it shows the help, which is no error to shorten.
_SHOWS_HELP: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(_click_errors, "NoArgsIsHelpError", None),) if cls is not None
)


class OneLineErrors(TyperGroup):
    """A group whose usage errors read ``cascade pause: invalid value ... (cascade pause --help)``.

    typer's own are a framed panel of five lines or more; a script's log, a
    terminal and a person all read one line better. Its commands' help texts (and its own)
    are flowed: a docstring's line breaks inside a paragraph are not the terminal's, and
    typer keeps them after the first paragraph (the summary `cascade --help` lists).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in (self, *self.commands.values()):
            if command.help:
                command.help = flowed(command.help)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; in standalone mode exit with its code, usage errors said in one line."""
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except _SHOWS_HELP as exc:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except _ClickException as exc:
            typer.echo(_one_line(exc), err=True)
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except _Abort:
            typer.echo("cascade: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: Exception) -> str:
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    message = message[:1].lower() + message[1:]
    context = getattr(exc, "ctx", None)
    if context is None:
        return f"cascade: {message}"
    path = context.command_path
    return f"{path}: {message} (see {path} --help)"


def flowed(text: str) -> str:
    """``text`` (a docstring) with each paragraph on one line, paragraphs apart as they were;
    click's ``\\b`` paragraphs (kept as written) and what follows ``\\f`` (not shown) kept."""
    shown, cut, rest = text.partition("\f")
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(shown))
    joined = [
        part if part.startswith("\b") else " ".join(line.strip() for line in part.splitlines())
        for part in paragraphs
    ]
    return "\n\n".join(joined) + cut + rest
