"""Where the history is: a database URL, or the default SQLite file in the user's data directory.

The default is ``history.sqlite3`` in platformdirs' per-user data directory
for ``cascade``: ``$XDG_DATA_HOME/cascade`` (``~/.local/share/cascade``) on
Linux, ``~/Library/Application Support/cascade`` on macOS,
``%LOCALAPPDATA%\\cascade`` on Windows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["default_path", "describe", "resolve_url"]

_FILE = "history.sqlite3"
_BAD_PORT = (
    "the database URL's port is not a number from 1 to 65535 (an IPv6 address goes in "
    "brackets: postgresql://USER@[::1]:5432/DB)"
)


def default_path() -> Path:
    """The default SQLite file (not created here)."""
    return platformdirs.user_data_path("cascade", appauthor=False) / _FILE


def resolve_url(url: str | os.PathLike[str] | None) -> sa.URL:
    """The SQLAlchemy URL of ``url``: a URL (``sqlite:///...``, ``postgresql://...``), a path
    to a SQLite file, or ``None`` for :func:`default_path`.

    ``postgresql://`` is driven by psycopg 3 (the ``[postgresql]`` extra).
    Raises ``ValueError`` for text that is neither a URL nor a path, or a URL whose port is
    not one.
    """
    import sqlalchemy as sa  # opening a history's; its default path needs none of it

    if url is None:
        url = default_path()
    if isinstance(url, os.PathLike) or "://" not in url:
        path = Path(url).expanduser()
        if not str(path):
            raise ValueError("the database path is empty")
        return sa.URL.create("sqlite", database=str(path))
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError(f"{url!r} is not a database URL") from None
    except ValueError:  # SQLAlchemy's int() of the port: an unclosed [IPv6], a name
        raise ValueError(_BAD_PORT) from None
    if parsed.port is not None and not 0 < parsed.port <= 65_535:
        raise ValueError(_BAD_PORT)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: sa.URL) -> str:
    """``url`` for people: a SQLite file's path, else the URL without its password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)
