"""Cascade notifications: a long-running reader of the broker that posts one webhook per event
(a run failed or succeeded, a task held for a decision, a hold near its deadline, an engine
whose connection was lost), as generic JSON or a Slack incoming webhook's body.

:class:`Notifier` is what `cascade notify` runs::

    webhook = Webhook(os.environ["CASCADE_NOTIFY_WEBHOOK"])
    notifier = Notifier(connector, webhook, fmt="slack", events=["run.failed", "task.held"])
    await notifier.start()     # before or after connector.connect()
    ...
    await notifier.stop()

Notifiers that share a state database (a SQLite file on one host, PostgreSQL across hosts:
``state=History(url, mode="write")``) post each event once between them, and never again
after a restart (:class:`ClaimLedger`).
docs/notifications.md says what is posted, when, and the worst cases.
"""

from ._bodies import FORMATS, body, digest_body, headline
from ._claims import ClaimLedger, default_group, default_ledger_path, member_id
from ._destinations import DestinationRefused, Destinations
from ._metrics import NotifyMetrics
from ._notification import DEFAULT_EVENTS, EVENTS, Notification, last_line
from ._notifier import DEFAULT_RATE, Notifier, NotifyCounts
from ._watch import DEFAULT_WARN_BEFORE, EventWatch, parse_filter
from ._webhook import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, MAX_ANSWER, Posted, Webhook, redact

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_EVENTS",
    "DEFAULT_RATE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WARN_BEFORE",
    "EVENTS",
    "FORMATS",
    "MAX_ANSWER",
    "DestinationRefused",
    "Destinations",
    "EventWatch",
    "ClaimLedger",
    "Notification",
    "Notifier",
    "NotifyCounts",
    "NotifyMetrics",
    "Posted",
    "Webhook",
    "body",
    "default_group",
    "default_ledger_path",
    "digest_body",
    "headline",
    "last_line",
    "member_id",
    "parse_filter",
    "redact",
]
