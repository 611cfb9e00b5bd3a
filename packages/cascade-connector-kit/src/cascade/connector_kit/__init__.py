"""Building blocks for writing a connector, and the helpers every Cascade package shares.

Workflow authors and telemetry readers never need this package: what they use is the
protocol, :mod:`cascade.interfaces`. A :class:`~cascade.interfaces.Connector` implementation
uses these parts to behave exactly like the others: the same routing of received messages to
subscriptions (:class:`Dispatcher`), the same presence rule on its own status topic
(:class:`PresenceGuard`), the same rate-limited warnings; and, inheriting
:class:`BrokerDifferences`, the same ``Connector`` methods where brokers differ (the
constraints index, the roll call, the shared-subscription probe). The constraints index itself
is :mod:`cascade.connector_kit.constraints_index`; an in-memory broker and connector to test
with are :mod:`cascade.connector_kit.testing`.

The identity defaults (``default_source_id``, ``default_org_id``, ...) are what every connector
and engine takes when nobody gave an id.

``bounded`` is ``asyncio.timeout`` (its backport on 3.10), and ``event_set`` waits for an event
for at most so long: use them, not ``asyncio.wait_for``, which before Python 3.12 drops a
cancellation that arrives just as the awaited operation completes; ``cancel_all`` stops tasks
whose work may reach one all the same (a library's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

if TYPE_CHECKING:
    from ._broker_differences import BrokerDifferences
    from ._dispatch import Dispatcher, Subscription
    from ._identity import (
        default_org_id,
        default_project_id,
        default_source_id,
        default_sourced_topics,
    )
    from ._presence import PresenceGuard, PresenceVerdict
    from ._ratelimit import RateLimitedLogger
    from ._timeout import bounded, cancel_all, event_set

__all__, __getattr__, __dir__ = lazy_exports(__name__)
