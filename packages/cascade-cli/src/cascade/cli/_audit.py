"""How the audit trail's events are shown: who, what, its scope and params (the command
is :mod:`.commands.audit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from ._history_db import cell
from ._inert import SHOWN, inert
from ._run_ids import short_id

if TYPE_CHECKING:
    from cascade.history import AuditEvent

__all__ = ["ACTION_STYLES", "by_text", "scope_and_params", "stopped_text"]

ACTION_STYLES = {"set": "magenta", "cleared": "green", "expired": "yellow", "cancelled": "red"}
_NAMES_SHOWN = 5


def by_text(event: AuditEvent) -> Text:
    """Who set or cleared it; on an expiry, who had set what expired."""
    if event.issued_by is None or event.action != "expired":
        return cell(event.issued_by, SHOWN["source"])
    return Text("set by ").append_text(cell(event.issued_by, SHOWN["source"]))


def _names(tasks: Any, count: int) -> str:
    listed = tasks if isinstance(tasks, list) else []
    names = [str(t.get("task_name", "?")) if isinstance(t, dict) else "?" for t in listed]
    shown = ", ".join(inert(name, SHOWN["name"]) for name in names[:_NAMES_SHOWN])
    more = count - min(len(names), _NAMES_SHOWN)
    return shown + (f" and {more} more" if more > 0 else "")


def stopped_text(event: AuditEvent) -> str:
    """What a cancel stopped, in words: ``on host-4242: cancelled 2 (crawl, crawl), abandoned 1
    (load), not started 17``; ``already cancelled`` for a second request."""
    stopped = event.stopped or {}
    head = f"on {inert(event.source or '?', SHOWN['source'])}: "
    if stopped.get("outcome") == "already_cancelled":
        return head + "already cancelled"
    parts = []
    for kind in ("cancelled", "abandoned"):
        count = stopped.get(f"{kind}_count") or 0
        names = f" ({_names(stopped.get(kind), count)})" if count else ""
        if count or kind == "cancelled":
            parts.append(f"{kind} {count}{names}")
    parts.append(f"not started {stopped.get('not_started') or 0}")
    return head + ", ".join(parts)


def scope_and_params(event: AuditEvent) -> tuple[str | None, str]:
    if event.action == "cancelled":
        return f"run:{short_id(event.run_id or '')}", stopped_text(event)
    params = ", ".join(f"{key}={value}" for key, value in (event.params or {}).items())
    return event.scope, params
