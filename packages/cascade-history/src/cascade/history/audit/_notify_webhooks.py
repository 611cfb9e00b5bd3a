"""The webhooks a dashboard's admins added for its process to notify (``notify_webhooks``).

A webhook's URL is a secret (Slack's and Discord's hold a token): :class:`NotifyWebhook`
keeps it out of its ``repr`` and its JSON; whoever shows one redacts it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .._text import clean
from ..store._schema import notify_webhooks

__all__ = ["NotifyWebhook", "delete_webhook", "insert_webhook", "list_webhooks"]


@dataclass(frozen=True, slots=True)
class NotifyWebhook:
    """A webhook added at a dashboard: its ``id``, ``url`` (a secret: never in its ``repr``
    nor :meth:`to_json`), body ``format`` (``generic``, ``slack``), the ``events`` posted and
    the ``filters`` (``ORG[/PROJECT[/WORKFLOW]]`` globs; none: every run), who added it and
    when (epoch seconds)."""

    id: int
    url: str = field(repr=False)
    format: str
    events: tuple[str, ...]
    filters: tuple[str, ...]
    created_by: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        """This webhook as a JSON object, without its URL."""
        return {
            "id": self.id,
            "format": self.format,
            "events": list(self.events),
            "filters": list(self.filters),
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


def _webhook(row: Any) -> NotifyWebhook:
    def listed(text: str) -> tuple[str, ...]:
        return tuple(part for part in text.split(",") if part)

    return NotifyWebhook(
        row.id,
        row.url,
        row.format,
        listed(row.events),
        listed(row.filters),
        row.created_by,
        row.created_at,
    )


def insert_webhook(
    connection: sa.Connection,
    url: str,
    *,
    fmt: str,
    events: tuple[str, ...],
    filters: tuple[str, ...],
    created_by: str,
) -> NotifyWebhook:
    """Keep a webhook; it, with its id."""
    if any("," in part for part in (*events, *filters)):
        raise ValueError("an event or a filter cannot hold a comma")
    row = connection.execute(
        notify_webhooks.insert()
        .values(
            url=url,
            format=clean(fmt, 16),
            events=",".join(events),
            filters=",".join(filters),
            created_by=clean(created_by, 256),
            created_at=time.time(),
        )
        .returning(*notify_webhooks.c)
    ).one()
    return _webhook(row)


def list_webhooks(connection: sa.Connection) -> list[NotifyWebhook]:
    """Every webhook kept, the first added first."""
    query = sa.select(notify_webhooks).order_by(notify_webhooks.c.id)
    return [_webhook(row) for row in connection.execute(query)]


def delete_webhook(connection: sa.Connection, webhook_id: int) -> NotifyWebhook | None:
    """Forget the webhook ``webhook_id``; it, or ``None`` when there was none."""
    row = connection.execute(
        sa.delete(notify_webhooks)
        .where(notify_webhooks.c.id == webhook_id)
        .returning(*notify_webhooks.c)
    ).first()
    return None if row is None else _webhook(row)
