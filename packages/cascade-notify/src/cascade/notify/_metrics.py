"""``NotifyMetrics``: a notifier's counts in Prometheus's text format (``cascade-notify[metrics]``),
served at ``/metrics`` by :class:`cascade.metrics.MetricsServer`. No label carries the webhook's
URL (it may hold a token): one notifier posts to one webhook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._notifier import Notifier

__all__ = ["NotifyMetrics"]


class NotifyMetrics:
    """Renders ``notifier``'s counts each scrape (a registry of its own)."""

    def __init__(self, notifier: Notifier) -> None:
        from prometheus_client import CollectorRegistry

        self.notifier = notifier
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        counts = self.notifier.counts
        events = CounterMetricFamily(
            "cascade_notify_events",
            "Events a notifier saw, by kind and what became of them",
            labels=["event", "outcome"],
        )
        for (kind, outcome), value in sorted(counts.events.items()):
            events.add_metric([kind, outcome], value)
        yield events
        yield _by_outcome(
            "cascade_notify_http_attempts",
            "HTTP attempts at the webhook, by outcome",
            counts.attempts,
        )
        yield _by_outcome(
            "cascade_notify_posts", "Posts (one event's or a digest's), by outcome", counts.posts
        )
        yield CounterMetricFamily(
            "cascade_notify_digests",
            "Digests posted (events beyond the rate)",
            value=counts.digests,
        )
        yield CounterMetricFamily(
            "cascade_notify_audit_errors",
            "Posts the history could not keep in its audit",
            value=counts.audit_errors,
        )
        claims = self.notifier.claims
        if claims is not None:
            yield CounterMetricFamily(
                "cascade_notify_takeovers",
                "Claims taken over after their lease ended unposted (each may be one more post)",
                value=claims.takeovers,
            )
            yield CounterMetricFamily(
                "cascade_notify_overruns",
                "Posts that outlasted their claim's lease (another notifier may have posted too)",
                value=claims.overruns,
            )
            yield CounterMetricFamily(
                "cascade_notify_unclaimed",
                "Events posted without a claim: the state database could not be reached",
                value=claims.unclaimed,
            )
            yield _by_outcome(
                "cascade_notify_state_errors",
                "The state database's failures, by step (claim, settle, prune)",
                claims.errors,
                label="step",
            )
        yield GaugeMetricFamily(
            "cascade_notify_pending",
            "Events being claimed or posted now",
            value=self.notifier.pending,
        )

    def render(self) -> bytes:
        """The text a scrape gets."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _by_outcome(name: str, documentation: str, counts: Counter[str], label: str = "outcome") -> Any:
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name, documentation, labels=[label])
    for outcome, value in sorted(counts.items()):
        family.add_metric([outcome], value)
    return family
