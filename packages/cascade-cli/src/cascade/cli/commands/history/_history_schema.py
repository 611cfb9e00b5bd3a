"""What `cascade history status` says of the history's schema: a line, or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cascade.history import SchemaStatus

__all__ = ["schema_json", "status_line"]


def status_line(status: SchemaStatus) -> str:
    """One line: where the history is, its revision against the code's, what to do."""
    if not status.exists:
        return (
            f"{status.location}: no history yet (code at revision {status.head}); "
            "cascade history migrate or cascade record makes it"
        )
    if status.foreign:
        return f"{status.location}: not a Cascade history (no alembic_version table)"
    if status.current is None:
        return f"{status.location}: empty, code at revision {status.head}; migrate makes it"
    if status.up_to_date:
        return f"{status.location}: revision {status.current}, up to date"
    if not status.known:
        return (
            f"{status.location}: revision {status.current}, newer than this Cascade's "
            f"{status.head}: upgrade Cascade"
        )
    return (
        f"{status.location}: revision {status.current}, code at {status.head}: "
        f"{len(status.pending)} to apply ({', '.join(status.pending)}): cascade history migrate"
    )


def schema_json(status: SchemaStatus) -> dict[str, object]:
    """The schema's status as `--json` prints it."""
    return {
        "location": status.location,
        "exists": status.exists,
        "revision": status.current,
        "head": status.head,
        "up_to_date": status.up_to_date,
        "known": status.known,
        "pending": list(status.pending),
        "foreign": status.foreign,
    }
