"""How the audit trail's events are shown: who (and what vouched for the name), what, its
scope and params (the command is :mod:`.commands.audit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from cascade.control.run_ids import short_id
from cascade.reader import SHOWN, inert

from ...plumbing._history_db import cell

if TYPE_CHECKING:
    from cascade.history import AuditEvent

__all__ = [
    "ACTION_STYLES",
    "action_style",
    "action_text",
    "by_text",
    "decided_text",
    "notified_text",
    "refused_decision",
    "scope_and_params",
    "started_text",
    "stopped_text",
    "who_text",
]

ACTION_STYLES = {
    "set": "magenta",
    "cleared": "green",
    "expired": "yellow",
    "cancelled": "red",
    "decided": "cyan",
    "refused": "bold red",
    "start": "blue",
    "notified": "green",
}
_VOUCHED = (
    "set",
    "cleared",
    "cancelled",
    "decided",
    "refused",
    "start",
)  # what a writer or a dashboard names
_NAMES_SHOWN = 5
# why an engine refused a decision, in words (cascade.interfaces.commands.DecisionOutcome)
_REFUSALS = {
    "already_decided": "already decided",
    "not_held": "the task is not held",
    "unknown_task": "the run has no such task",
    "ambiguous": "several held tasks have that name",
    "stale_attempt": "the task is held at another attempt",
    "not_retryable": "a gate has no attempt to retry",
}


def who_text(event: AuditEvent) -> str | None:
    """Who, and what vouched for the name: ``alice@example.com (oidc)``, or ``bob (claimed)``
    where only its writer said it (``None`` when nobody is named)."""
    if event.issued_by is None:
        return None
    if event.action not in _VOUCHED:
        return event.issued_by
    return f"{event.issued_by} ({event.vouched or 'claimed'})"


def refused_decision(event: AuditEvent) -> bool:
    """Whether ``event`` is a decision on a held task that its run's engine refused."""
    return event.action == "decided" and (event.decided or {}).get("outcome") != "applied"


def action_text(event: AuditEvent) -> str:
    """The action, with how many a row of refusals stands for (``refused``, a multiplication
    sign and ``300``); a decision the engine refused is ``refused`` (its row's ``action`` stays
    ``decided`` in ``--json``)."""
    if refused_decision(event):
        return "refused"
    return f"{event.action} \u00d7{event.count}" if event.count > 1 else event.action


def action_style(event: AuditEvent) -> str:
    """The style of the action's cell: a refused decision's is a refusal's."""
    return ACTION_STYLES.get("refused" if refused_decision(event) else event.action, "")


def by_text(event: AuditEvent) -> Text:
    """Who set, cleared or cancelled it, or was refused it, and what vouched for the name; on
    an expiry, who had set what expired."""
    shown = cell(who_text(event), SHOWN["source"])
    if event.issued_by is None or event.action != "expired":
        return shown
    return Text("set by ").append_text(shown)


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


def decided_text(event: AuditEvent) -> str:
    """What came of a decision on a held task, as the engine that ran the run answered:
    ``load (load-1) attempt 1 on host-1: applied``, or ``...: refused: already decided: retry
    by alice``, ``...: refused: the task is not held``."""
    said = event.decided or {}
    task = inert(str(said.get("task_name") or said.get("task_id") or "?"), SHOWN["name"])
    if said.get("task_id") and said.get("task_id") != said.get("task_name"):
        task += f" ({inert(str(said['task_id']), SHOWN['name'])})"
    attempt = f" attempt {said['attempt']}" if said.get("attempt") is not None else ""
    head = f"{task}{attempt} on {inert(event.source or '?', SHOWN['source'])}: "
    if said.get("outcome") == "applied":
        return head + "applied"
    first = said.get("decided") if isinstance(said.get("decided"), dict) else None
    won = ""
    if first is not None:
        by = "the hold's deadline" if first.get("deadline") else str(first.get("by") or "someone")
        decision = inert(str(first.get("decision")), SHOWN["params"])
        won = f"{decision} by {inert(by, SHOWN['source'])}"
        won = f": {won}" if said.get("outcome") == "already_decided" else f" (last: {won})"
    outcome = str(said.get("outcome"))
    why = _REFUSALS.get(outcome) or inert(outcome, SHOWN["params"])
    return head + f"refused: {why}{won}"


def started_text(event: AuditEvent) -> str:
    """What a start request started, as the run's engine said: ``nightly on host-1: day=...,
    n=5; rerun of 58a88765cea2``."""
    started = event.started or {}
    params = ", ".join(f"{key}={value}" for key, value in (event.params or {}).items())
    text = f"{inert(str(started.get('name') or event.type or '?'), SHOWN['name'])} on "
    text += inert(event.source or "?", SHOWN["source"])
    text += f": {params}" if params else ""
    if started.get("rerun_of"):
        text += f"; rerun of {inert(short_id(str(started['rerun_of'])), SHOWN['name'])}"
    return text


def notified_text(event: AuditEvent) -> str:
    """How a notifier's post ended: ``posted to https://hooks.slack.com/… (2 attempts)``, or
    ``failed at https://hooks.slack.com/… after 5 attempts: answered 500``."""
    post = event.notified or {}
    where = inert(str(post.get("webhook") or "?"), SHOWN["params"])
    attempts = post.get("attempts") or 0
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    digest = ", in a digest" if post.get("digest") else ""
    if post.get("outcome") == "posted":
        return f"posted to {where} ({tries}{digest})"
    error = inert(str(post.get("error") or "no answer"), SHOWN["params"])
    return f"failed at {where} after {tries}{digest}: {error}"


def scope_and_params(event: AuditEvent) -> tuple[str | None, str]:
    if event.action == "refused":  # type: the action refused; scope: its target
        return event.scope, ""
    if event.action == "cancelled":
        return f"run:{short_id(event.run_id or '')}", stopped_text(event)
    if event.action == "decided":  # type: the decision
        return f"run:{short_id(event.run_id or '')}", decided_text(event)
    if event.action == "start":  # type: the workflow
        return f"run:{short_id(event.run_id or '')}", started_text(event)
    if event.action == "notified":  # type: the event posted
        scope = f"run:{short_id(event.run_id)}" if event.run_id else event.scope
        return scope, notified_text(event)
    params = ", ".join(f"{key}={value}" for key, value in (event.params or {}).items())
    return event.scope, params
