"""The `cascade` command group: every usage error as one line on stderr, exit 2."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["OneLineErrors"]

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
    terminal and a person all read one line better.
    """

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
