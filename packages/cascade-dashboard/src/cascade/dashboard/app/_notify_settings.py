"""Notifications from a team's dashboard: admins add, list and remove webhooks
(``/api/settings/webhooks``), and the dashboard's process runs a :class:`~cascade.notify.Notifier`
per webhook on its own broker connection, with its claims and audit in its history.

The webhooks are kept in the history (``notify_webhooks``), so they outlive a restart and
another dashboard of the same history runs them too (their claims post each event once). A
webhook's URL is a secret: it goes from the POST into the history and the notifier, and is
shown redacted (``https://hooks.slack.com/…``) in answers, the access audit and logs. Each
endpoint takes ``admin`` over ``global``, as ``/api/tokens`` does; a change is audited when
done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._guard import Refused, json_body, refusal

if TYPE_CHECKING:
    from cascade.control.access import Access
    from cascade.history import History, NotifyWebhook
    from cascade.interfaces import Connector
    from cascade.notify import Destinations, Notifier

    from ..auth._team import Team

__all__ = ["Notifications", "notify_routes"]

_log = logging.getLogger("cascade.dashboard")
_MAX_BODY = 8 * 1024
_NO_STORE = {"cache-control": "no-store"}
_NO_HISTORY = "notifications are kept in the history: start the dashboard with --db URL"


class Notifications:
    """The notifiers a dashboard's process runs: one per webhook of ``history`` (opened for
    writing), reading ``connector`` (the dashboard's connection); ``dashboard_url``: each
    run's link; ``destinations``: where the webhooks may post (global addresses only, by
    default: an admin's webhook must not reach inside the dashboard's network unless whoever
    started the dashboard allowed it). :meth:`start` runs the webhooks kept (one refused now
    is logged and not run); :meth:`add` and :meth:`remove` change them; :meth:`stop` stops
    every notifier."""

    def __init__(
        self,
        connector: Connector,
        history: History,
        *,
        dashboard_url: str | None = None,
        destinations: Destinations | None = None,
    ) -> None:
        from cascade.notify import Destinations

        self.connector = connector
        self.history = history
        self.dashboard_url = dashboard_url
        self.destinations = destinations or Destinations()
        self.running: dict[int, Notifier] = {}

    async def start(self) -> None:
        """Run a notifier for each webhook kept in the history."""
        from cascade.notify import redact

        for webhook in await asyncio.to_thread(self.history.webhooks):
            try:
                await self._run(webhook)
            except ValueError as exc:
                _log.warning(
                    "notifications: webhook %d (%s) not run: %s",
                    webhook.id,
                    redact(webhook.url),
                    exc,
                )

    async def _run(self, webhook: NotifyWebhook) -> None:
        from cascade.notify import Notifier, Webhook, parse_filter

        hook = Webhook(webhook.url, destinations=self.destinations)
        notifier = Notifier(
            self.connector,
            hook,
            fmt=webhook.format,
            events=webhook.events,
            filters=[parse_filter(text) for text in webhook.filters],
            dashboard_url=self.dashboard_url,
            state=self.history,
            history=self.history,
        )
        await notifier.start()
        self.running[webhook.id] = notifier

    async def add(self, body: Any, created_by: str) -> NotifyWebhook:
        """Keep the webhook ``body`` asks for (``{"url", "format", "events", "filters"}``)
        and run it; ``ValueError`` saying what is wrong (``DestinationRefused``: where it
        would post is inside, and not allowed)."""
        url, fmt, events, filters = _asked(body)
        await asyncio.to_thread(self.destinations.check, url)
        webhook = await asyncio.to_thread(
            self.history.add_webhook,
            url,
            fmt=fmt,
            events=events,
            filters=filters,
            created_by=created_by,
        )
        await self._run(webhook)
        return webhook

    async def remove(self, webhook_id: int) -> NotifyWebhook | None:
        """Stop and forget the webhook ``webhook_id``; it, or ``None`` when there was none."""
        removed = await asyncio.to_thread(self.history.remove_webhook, webhook_id)
        notifier = self.running.pop(webhook_id, None)
        if notifier is not None:
            await notifier.stop()
        return removed

    async def stop(self) -> None:
        """Stop every notifier (a post under way gets its notifier's stop timeout)."""
        running, self.running = list(self.running.values()), {}
        await asyncio.gather(*(notifier.stop() for notifier in running))


def _asked(body: Any) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """The URL, format, events and filters a POST asks for; ValueError saying what is wrong
    (never showing the URL but redacted)."""
    from cascade.notify import DEFAULT_EVENTS, EVENTS, FORMATS, parse_filter, redact

    if not isinstance(body, dict):
        raise ValueError('send {"url": URL, "format": "generic", "events": [...], "filters": []}')
    unknown = sorted(set(body) - {"url", "format", "events", "filters"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}: give url, format, events, filters")
    url, fmt = body.get("url"), body.get("format", "generic")
    events, filters = body.get("events", list(DEFAULT_EVENTS)), body.get("filters", [])
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        shown = redact(url) if isinstance(url, str) else "no text"
        raise ValueError(f"url must be an http(s) URL, not {shown}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise ValueError(f"events must be a list of {', '.join(EVENTS)}")
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise ValueError("filters must be a list of ORG[/PROJECT[/WORKFLOW]] globs")
    for text in filters:
        if "," in text:
            raise ValueError(f"{text!r}: a filter holds no comma (give several filters)")
        parse_filter(text)
    return url, fmt, tuple(dict.fromkeys(events)), tuple(filters)


def _shown(webhook: NotifyWebhook) -> dict[str, Any]:
    from cascade.notify import redact

    return {**webhook.to_json(), "url": redact(webhook.url)}


def _admin(access: Access) -> str | None:
    return access.may_administer()


class _NotifyApi:
    def __init__(self, team: Team, notifications: Notifications | None) -> None:
        self.team = team
        self.notifications = notifications

    async def add(self, request: Request) -> Response:
        access = self.team.control(request.scope, "webhook-add", "webhooks", _admin)
        if self.notifications is None:
            return refusal(503, _NO_HISTORY)
        from cascade.history import HistoryError

        try:
            webhook = await self.notifications.add(
                await json_body(request, _MAX_BODY, "send the webhook as application/json"),
                access.identity.name,
            )
        except Refused as refused:
            return refusal(refused.status, refused.message)
        except ValueError as exc:
            return refusal(400, str(exc))
        except HistoryError as exc:
            return refusal(503, str(exc))
        shown = _shown(webhook)
        self.team.done(access, "webhook-add", f"webhook:{webhook.id}:{shown['url']}")
        _log.info("notifications: webhook %d added (%s)", webhook.id, shown["url"])
        return JSONResponse({"webhook": shown}, status_code=201, headers=_NO_STORE)

    async def list(self, request: Request) -> Response:
        access = self.team.reader(request.scope, "webhook-list")
        reason = access.may_administer()
        if reason is not None:
            self.team.refuse(access, "webhook-list", "webhooks", reason)
        if self.notifications is None:
            return JSONResponse({"webhooks": [], "available": False, "why": _NO_HISTORY})
        from cascade.history import HistoryError

        try:
            found = await asyncio.to_thread(self.notifications.history.webhooks)
        except HistoryError as exc:
            return refusal(503, str(exc))
        listed = [_shown(webhook) for webhook in found]
        return JSONResponse({"webhooks": listed, "available": True}, headers=_NO_STORE)

    async def remove(self, request: Request) -> Response:
        raw = request.path_params["webhook_id"]
        access = self.team.control(request.scope, "webhook-remove", f"webhook:{raw}"[:80], _admin)
        if not raw.isdigit() or len(raw) > 18:
            return refusal(400, "a webhook's id is a whole number")
        if self.notifications is None:
            return refusal(503, _NO_HISTORY)
        from cascade.history import HistoryError

        try:
            removed = await self.notifications.remove(int(raw))
        except HistoryError as exc:
            return refusal(503, str(exc))
        if removed is None:
            return refusal(404, f"no webhook {raw}")
        shown = _shown(removed)
        self.team.done(access, "webhook-remove", f"webhook:{removed.id}:{shown['url']}")
        return JSONResponse({"webhook": shown}, headers=_NO_STORE)


def notify_routes(team: Team, notifications: Notifications | None) -> list[Route]:
    """``POST /api/settings/webhooks`` (``{"url", "format", "events", "filters"}``: 201 with
    the webhook, its URL redacted; its notifier runs at once), ``GET /api/settings/webhooks``
    (every webhook, redacted; ``available``: whether there is a history to keep them) and
    ``DELETE /api/settings/webhooks/{id}`` (its notifier stopped): for admins over global
    only. Without ``notifications`` (no history), changes are 503s saying so."""
    api = _NotifyApi(team, notifications)
    return [
        Route("/api/settings/webhooks", api.add, methods=["POST"]),
        Route("/api/settings/webhooks", api.list, methods=["GET"]),
        Route("/api/settings/webhooks/{webhook_id}", api.remove, methods=["DELETE"]),
    ]
