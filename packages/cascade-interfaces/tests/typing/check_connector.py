"""Checked by mypy only: the in-memory connector satisfies the Connector protocol."""

from __future__ import annotations

from cascade.interfaces import Connector, SubscriptionHandle
from cascade.interfaces.connector_kit import Subscription
from cascade.interfaces.testing import InMemoryConnector

connector: Connector = InMemoryConnector()
handle: SubscriptionHandle = Subscription.__new__(Subscription)
