"""`cascade notify`'s claims and audit: which notifier of a group posts an event, and each
post that was made (or failed for good).

A claim is a row of ``notify_claims`` keyed by the group and the event's key: the insert that
makes it owns the post; the other notifiers' inserts find it there. The claim is a lease: one
not marked posted within ``lease`` seconds of ``claimed_at`` (its owner died mid-post, or
lost its database) is taken over by a conditional ``UPDATE`` that only one notifier's
statement can match, and counted in ``takeovers``. Both are single statements that the
database orders (PostgreSQL's row locks, SQLite's write lock), so two notifiers never both
win one round; times are the notifiers' clocks, so a lease must exceed their skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._text import MAX_TEXT_BYTES, clean
from ..records._audit_records import AuditEvent
from ..store._inserts import insert_for
from ..store._schema import notify_claims, notify_posts

__all__ = [
    "NotifyPost",
    "PostClaim",
    "claim_post",
    "end_post",
    "insert_post",
    "post_events",
    "prune_post_claims",
]

_NAME_BYTES = 256  # owner, notifier, group


@dataclass(frozen=True, slots=True)
class PostClaim:
    """What came of claiming an event: ``won`` (this notifier posts it; ``taken_over``: from a
    claim whose lease had ended unposted), else who holds it (``owner``, since ``claimed_at``)
    and whether it was posted (``posted_at``, ``outcome``). Times are epoch seconds."""

    won: bool
    owner: str
    claimed_at: float
    taken_over: bool = False
    posted_at: float | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class NotifyPost:
    """One event a notifier posted to a webhook, or failed to for good: ``event`` (its kind)
    and ``event_key``, its run, task and engine, the ``webhook`` (redacted: scheme and host),
    ``outcome`` (``posted``, ``failed``) after ``attempts`` with the last HTTP ``status``
    (``None``: no answer) and ``error``; ``digest``: within a digest; by ``notifier`` of
    ``group``, at ``at`` (epoch seconds)."""

    at: float
    event: str
    event_key: str
    webhook: str
    outcome: str
    attempts: int
    notifier: str
    group: str
    run_id: str | None = None
    task_id: str | None = None
    source: str | None = None
    status: int | None = None
    error: str | None = None
    digest: bool = False

    def to_json(self) -> dict[str, Any]:
        """This post as a JSON object."""
        return {
            "at": self.at,
            "event": self.event,
            "event_key": self.event_key,
            "webhook": self.webhook,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "digest": self.digest,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "source": self.source,
            "notifier": self.notifier,
            "group": self.group,
        }


def _mine(group: str, key: str) -> Any:
    return (notify_claims.c.notifier_group == group) & (notify_claims.c.event_key == key)


def claim_post(
    connection: sa.Connection, group: str, key: str, owner: str, *, lease: float, now: float
) -> PostClaim:
    """Claim the event ``key`` of ``group`` for ``owner`` (see the module)."""
    group, key, owner = clean(group, _NAME_BYTES), clean(key), clean(owner, _NAME_BYTES)
    row = {
        "notifier_group": group,
        "event_key": key,
        "owner": owner,
        "claimed_at": now,
        "takeovers": 0,
    }
    inserted = connection.execute(
        insert_for(connection)(notify_claims)
        .values(row)
        .on_conflict_do_nothing()
        .returning(notify_claims.c.event_key)
    ).first()
    if inserted is not None:
        return PostClaim(True, owner, now)
    taken = connection.execute(
        sa.update(notify_claims)
        .where(
            _mine(group, key),
            notify_claims.c.posted_at.is_(None),
            notify_claims.c.claimed_at < now - lease,
        )
        .values(owner=owner, claimed_at=now, takeovers=notify_claims.c.takeovers + 1)
        .returning(notify_claims.c.event_key)
    ).first()
    if taken is not None:
        return PostClaim(True, owner, now, taken_over=True)
    held = connection.execute(sa.select(notify_claims).where(_mine(group, key))).one()
    return PostClaim(False, held.owner, held.claimed_at, False, held.posted_at, held.outcome)


def end_post(
    connection: sa.Connection, group: str, key: str, owner: str, *, outcome: str, now: float
) -> bool:
    """Mark ``owner``'s claim on ``key`` posted with ``outcome``; ``False`` when the claim is
    no longer ``owner``'s (its lease ended and another notifier took it over)."""
    group, key, owner = clean(group, _NAME_BYTES), clean(key), clean(owner, _NAME_BYTES)
    ended = connection.execute(
        sa.update(notify_claims)
        .where(_mine(group, key), notify_claims.c.owner == owner)
        .values(posted_at=now, outcome=clean(outcome, 32))
    )
    return ended.rowcount == 1


def prune_post_claims(connection: sa.Connection, before: float) -> int:
    """Forget the claims made before ``before``; how many."""
    return connection.execute(
        sa.delete(notify_claims).where(notify_claims.c.claimed_at < before)
    ).rowcount


def insert_post(connection: sa.Connection, post: NotifyPost) -> None:
    """Keep ``post`` in the audit."""

    def said(text: str | None, limit: int | None = MAX_TEXT_BYTES) -> str | None:
        return None if text is None else clean(text, limit)

    connection.execute(
        notify_posts.insert().values(
            at=post.at,
            event=clean(post.event, 32),
            event_key=clean(post.event_key),
            run_id=said(post.run_id),
            task_id=said(post.task_id),
            source=said(post.source),
            webhook=clean(post.webhook),
            outcome=clean(post.outcome, 16),
            attempts=post.attempts,
            status=post.status,
            error=said(post.error, 4 * MAX_TEXT_BYTES),
            digest=post.digest,
            notifier=clean(post.notifier, _NAME_BYTES),
            notifier_group=clean(post.group, _NAME_BYTES),
        )
    )


def _post(row: Any) -> NotifyPost:
    return NotifyPost(
        at=row.at,
        event=row.event,
        event_key=row.event_key,
        webhook=row.webhook,
        outcome=row.outcome,
        attempts=row.attempts,
        notifier=row.notifier,
        group=row.notifier_group,
        run_id=row.run_id,
        task_id=row.task_id,
        source=row.source,
        status=row.status,
        error=row.error,
        digest=bool(row.digest),
    )


def post_events(connection: sa.Connection, *, since: float | None, limit: int) -> list[AuditEvent]:
    """The newest ``limit`` posts made since ``since``, as the audit's ``notified`` events
    (newest first): ``type`` the event's kind, ``scope`` ``run:<id>`` (an engine's loss:
    ``engine:<source>``), ``notified`` the post (:meth:`NotifyPost.to_json`)."""
    query = sa.select(notify_posts).order_by(notify_posts.c.at.desc(), notify_posts.c.id.desc())
    if since is not None:
        query = query.where(notify_posts.c.at >= since)
    events = []
    for row in connection.execute(query.limit(limit)):
        post = _post(row)
        scope = f"run:{post.run_id}" if post.run_id else f"engine:{post.source or '?'}"
        events.append(
            AuditEvent(
                post.at,
                "notified",
                scope,
                post.event,
                issued_by=post.notifier,
                run_id=post.run_id,
                source=post.source,
                notified=post.to_json(),
            )
        )
    return events
