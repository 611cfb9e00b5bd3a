"""``cascade --version``: the installed versions of the Cascade packages."""

from __future__ import annotations

import typer

__all__ = ["PACKAGES", "version_callback", "version_text"]

PACKAGES = (
    "cascade-cli",
    "cascade-runtime",
    "cascade-connector-mqtt",
    "cascade-client",
    "cascade-connector-kit",
    "cascade-interfaces",
    "cascade-history",  # the [history] extra: "not installed" without it
)


def _installed(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version  # --version's alone

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def version_text() -> str:
    """``cascade X.Y.Z`` then the version of each package it runs on."""
    cli, *others = PACKAGES
    parts = ", ".join(f"{name} {_installed(name)}" for name in others)
    return f"cascade {_installed(cli)} ({parts})"


def version_callback(value: bool) -> None:
    """The eager ``--version`` option: print the versions and exit 0."""
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)
