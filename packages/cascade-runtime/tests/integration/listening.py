"""An MQTT connector that keeps every subscription it was asked for: what an engine listens on,
for the tests that check it."""

from __future__ import annotations

from typing import Any

from cascade.connector_kit import Subscription
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import MessageCallback, SyncCallback


class Listening(MqttConnector):
    """An MQTT connector that keeps every subscription it was asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscriptions: list[Subscription] = []

    async def subscribe(
        self, topic_filter: str, callback: MessageCallback, *, on_sync: SyncCallback | None = None
    ) -> Subscription:
        subscription = await super().subscribe(topic_filter, callback, on_sync=on_sync)
        self.subscriptions.append(subscription)
        return subscription

    def filters(self) -> list[str]:
        """The filters it listens on now (where retained messages are read only through exact
        topics, as on RabbitMQ, those it read them through are let go)."""
        return [s.topic_filter for s in self.subscriptions if s.active]

    def listened(self) -> list[Subscription]:
        """Its subscriptions active now."""
        return [s for s in self.subscriptions if s.active]

    def commands(self) -> list[Subscription]:
        """Its subscriptions to a run's commands still active."""
        return [s for s in self.subscriptions if s.active and "/command/" in s.topic_filter]
