"""How a command ends on what it could not do: one line on stderr, exit 1."""

from __future__ import annotations

import typer

__all__ = ["fail"]


def fail(message: str) -> typer.Exit:
    """Say ``cascade: MESSAGE`` on stderr, on one line (a driver's or a library's message may
    run to several: a script's log and a person read one line better); the command raises
    what this returns (exit 1)."""
    said = " ".join(line.strip() for line in message.splitlines() if line.strip())
    typer.echo(f"cascade: {said}", err=True)
    return typer.Exit(1)
