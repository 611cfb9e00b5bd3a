"""Checked by mypy only: the in-memory connector satisfies the Connector protocol."""

from __future__ import annotations

from cascade.connector_kit import Subscription
from cascade.connector_kit.testing import InMemoryConnector
from cascade.interfaces import Connector, SubscriptionHandle

connector: Connector = InMemoryConnector()
handle: SubscriptionHandle = Subscription.__new__(Subscription)
