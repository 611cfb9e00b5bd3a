"""What `cascade cancel` says of the answers it refused: on stderr, a few, then a count."""

from __future__ import annotations

import typer

from cascade.control import Refusal

__all__ = ["RefusalsSaid"]

_REFUSALS_SAID = 5  # refused answers said one by one; the rest are counted


class RefusalsSaid:
    """Says the first few refused answers on stderr, one line each, as they come; the rest
    in one line at the end (a forger may send thousands)."""

    def __init__(self) -> None:
        self.said = 0

    def __call__(self, refusal: Refusal) -> None:
        if self.said < _REFUSALS_SAID:
            typer.echo(f"cascade: {refusal}", err=True)
            self.said += 1

    def rest(self, refused: int) -> None:
        if refused > self.said:
            typer.echo(
                f"cascade: and {refused - self.said} more answers from other sources refused",
                err=True,
            )
