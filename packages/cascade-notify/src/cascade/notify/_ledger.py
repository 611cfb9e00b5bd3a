"""``SentLedger``: the events a notifier has posted, kept in a small SQLite file, so that a
restart (which hears held tasks again from their runs' heartbeats) posts none of them twice."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

__all__ = ["KEEP_FOR", "SentLedger", "default_ledger_path"]

KEEP_FOR = 30 * 86_400.0
"""Seconds an event is remembered (a hold lasts a day by default; a month is ample)."""

_PRUNE_EVERY = 1_000  # claims between two prunes


def default_ledger_path() -> Path:
    """``$XDG_STATE_HOME/cascade/notify.sqlite3`` (``~/.local/state`` without it)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cascade" / "notify.sqlite3"


class SentLedger:
    """Events by key, and how their post ended. Several processes may share one file: a claim
    is one insert, which only one of them makes (an exclusive claim on one host)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, at REAL NOT NULL, "
            "outcome TEXT NOT NULL)"
        )
        self._claims = 0
        self.prune()

    def has(self, key: str) -> bool:
        """Whether ``key`` was claimed here (by this process or one sharing the file)."""
        row = self._db.execute("SELECT 1 FROM sent WHERE key = ?", (key,)).fetchone()
        return row is not None

    def claim(self, key: str) -> bool:
        """Claim ``key`` for posting; ``False`` when it was claimed before."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO sent (key, at, outcome) VALUES (?, ?, 'posting')",
            (key, time.time()),
        )
        self._claims += 1
        if self._claims % _PRUNE_EVERY == 0:
            self.prune()
        return cursor.rowcount == 1

    def settle(self, key: str, outcome: str) -> None:
        """Say how ``key``'s post ended (``posted``, ``failed``, ``by another``...)."""
        self._db.execute(
            "INSERT INTO sent (key, at, outcome) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET outcome = excluded.outcome",
            (key, time.time(), outcome),
        )

    def prune(self) -> None:
        """Forget what is older than :data:`KEEP_FOR`."""
        self._db.execute("DELETE FROM sent WHERE at < ?", (time.time() - KEEP_FOR,))

    def close(self) -> None:
        self._db.close()
